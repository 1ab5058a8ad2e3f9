"""Benchmark: the IWAE bound, plain (``vae_hub.objectives``) against compiled (``vae_hub.fast``), in one process.

For each thread count it times both, alternately ``--repeats`` times, on the same test images with the same noise,
and prints the medians, the speed-up, the compile time and the largest difference between the two.

    python benchmarks/bench_iwae.py [--data-dir DIR] [--images 500] [--k 1000] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from vae_hub import VAE, fast, load_mnist, objectives  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--model", default="weights/sgvb")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    model = VAE.from_pretrained(args.model)
    x = load_mnist("test", args.data_dir)[0][: args.images]

    def bound(fn, batch: int = 100) -> torch.Tensor:
        gen = torch.Generator().manual_seed(0)
        return torch.cat([fn(model, x[i : i + batch], k=args.k, generator=gen) for i in range(0, len(x), batch)])

    t0 = time.perf_counter()
    compiled = bound(fast.iwae_bound)
    compile_seconds = time.perf_counter() - t0
    diff = (compiled - bound(objectives.iwae_bound)).abs().max().item()
    result = {"compile_seconds": compile_seconds, "max_difference_nats": diff}
    for threads in args.threads:
        torch.set_num_threads(threads)
        times: dict[str, list[float]] = {"plain": [], "compiled": []}
        for _ in range(args.repeats):
            for name, fn in (("plain", objectives.iwae_bound), ("compiled", fast.iwae_bound)):
                t0 = time.perf_counter()
                bound(fn)
                times[name].append(time.perf_counter() - t0)
        plain, comp = statistics.median(times["plain"]), statistics.median(times["compiled"])
        print(
            f"{threads} thread(s), {args.images} images, K = {args.k}: plain {plain:.2f} s, compiled {comp:.2f} s "
            f"({plain / comp:.2f}× faster)"
        )
        result[f"threads_{threads}"] = {"plain_s": plain, "compiled_s": comp, "speedup": plain / comp}
    print(f"compile time {compile_seconds:.1f} s (first call, included once); largest difference {diff:.2e} nats")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

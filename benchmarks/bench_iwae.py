"""Benchmark: the IWAE bound's fast path against the plain chunked implementation, in one process.

For each thread count it times, alternately and ``--repeats`` times each, on the same test images and the same
noise (one seeded generator per call):
  1. ``iwae_bound_reference``: decode every z_k to 784 logits, Bernoulli NLL over (chunk, N, 784) tensors;
  2. ``iwae_bound``: the linear term through Wᵀ(x − ½), the rest summed over cache-sized blocks;
  3. the matmul limit: only the decoder's last matmul (K·N rows × 128 → 784), in blocks, which both must do;
and prints the medians, the speed-up, how far the fast path is from the limit, and the largest difference
between the two bounds. Usage: ``python benchmarks/bench_iwae.py [--data-dir DIR] [--threads 1 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from vae_hub import VAE, load_mnist  # noqa: E402
from vae_hub.data import to_unit  # noqa: E402
from vae_hub.objectives import IWAE_BLOCK_ROWS, _Workers, iwae_bound, iwae_bound_reference  # noqa: E402


@torch.no_grad()
def bound_seconds(fn, model: VAE, x: torch.Tensor, k: int, chunk: int, batch: int) -> tuple[float, float, torch.Tensor]:
    """Wall and CPU seconds for the bound on all of ``x``, ``batch`` images at a time as training.evaluate does,
    and the values. On one thread the CPU time is the steadier measure on a shared machine: it leaves out the
    time that other jobs held the core."""
    gen = torch.Generator().manual_seed(0)
    t0, c0 = time.perf_counter(), time.process_time()
    values = torch.cat([fn(model, x[i : i + batch], k, chunk, gen) for i in range(0, len(x), batch)])
    return time.perf_counter() - t0, time.process_time() - c0, values


@torch.no_grad()
def matmul_seconds(model: VAE, rows: int) -> float:
    """Seconds for the last Linear alone on ``rows`` hidden vectors, in blocks into one buffer per thread,
    shared out to threads the way the fast path does it."""
    out = model.decoder[-1]
    h = torch.randn(IWAE_BLOCK_ROWS, out.in_features)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    with _Workers(threads) as run:
        buffers = [torch.empty(IWAE_BLOCK_ROWS, out.out_features) for _ in range(threads)]
        run(lambda _, w: torch.addmm(out.bias, h, out.weight.t(), out=buffers[w]), range(rows // IWAE_BLOCK_ROWS))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="weights/sgvb", help="a save_pretrained folder or Hub repo id")
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $VAE_HUB_DATA, else ./data)")
    p.add_argument("--images", type=int, default=500, help="first N test images")
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=100)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU thread counts to measure")
    args = p.parse_args()

    model = VAE.from_pretrained(args.model)
    images, _ = load_mnist("test", args.data_dir, download=False)
    x = to_unit(images[: args.images]).reshape(-1, 784)
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        bound_seconds(iwae_bound, model, x[:20], 50, args.chunk, args.batch)  # warm-up
        plain, fast, limit, plain_cpu, fast_cpu = [], [], [], [], []
        for _ in range(args.repeats):  # interleaved, so that a change in the machine's load hits all three
            t, c, plain_values = bound_seconds(iwae_bound_reference, model, x, args.k, args.chunk, args.batch)
            plain.append(t)
            plain_cpu.append(c)
            t, c, fast_values = bound_seconds(iwae_bound, model, x, args.k, args.chunk, args.batch)
            fast.append(t)
            fast_cpu.append(c)
            limit.append(matmul_seconds(model, args.k * len(x)))
        plain_s, fast_s, limit_s, plain_c, fast_c = map(statistics.median, (plain, fast, limit, plain_cpu, fast_cpu))
        row = {
            "threads": threads,
            "images": len(x),
            "k": args.k,
            "plain_s": round(plain_s, 3),
            "fast_s": round(fast_s, 3),
            "matmul_limit_s": round(limit_s, 3),
            "speedup": round(plain_s / fast_s, 2),
            "fast_over_limit": round(fast_s / limit_s, 2),
            "plain_cpu_s": round(plain_c, 3),
            "fast_cpu_s": round(fast_c, 3),
            "cpu_speedup": round(plain_c / fast_c, 2),
            "max_abs_diff_nats": (fast_values - plain_values).abs().max().item(),
            "mean_log_likelihood": fast_values.mean().item(),
            "plain_runs_s": [round(t, 3) for t in plain],
            "fast_runs_s": [round(t, 3) for t in fast],
            "limit_runs_s": [round(t, 3) for t in limit],
            "load_average_1min": os.getloadavg()[0],
        }
        results.append(row)
        print(
            f"{threads} thread(s), {len(x)} images, K={args.k}: plain {plain_s:.2f} s, fast {fast_s:.2f} s, "
            f"speed-up {plain_s / fast_s:.1f}x; matmul alone {limit_s:.2f} s (fast at {fast_s / limit_s:.2f}x it); "
            f"CPU time {plain_c:.2f} s vs {fast_c:.2f} s ({plain_c / fast_c:.1f}x); "
            f"max |fast - plain| {row['max_abs_diff_nats']:.1e} nats; load {row['load_average_1min']:.1f}",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()

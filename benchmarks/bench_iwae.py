"""Benchmark: the IWAE bound's fast path against the plain chunked implementation, in one process.

For each thread count it times, alternately and ``--repeats`` times each, on the same test images and the same
noise (one seeded generator per call):
  1. the plain chunked bound, as this repository first had it (and as most code writes it): decode every z_k to
     784 logits, ``F.binary_cross_entropy_with_logits`` over (chunk, N, 784) tensors;
  2. ``iwae_bound_reference``: the same, with the project's fused Bernoulli NLL (itself ~3× faster than BCE);
  3. ``iwae_bound``: the linear term through Wᵀ(x − ½), the rest summed over cache-sized blocks;
  4. the matmul limit: only the decoder's last matmul (K·N rows × 128 → 784), in blocks, which all must do;
and prints the medians, the speed-ups over 1 and 2, how far the fast path is from the limit, and the largest
difference between the bounds. Usage: ``python benchmarks/bench_iwae.py [--data-dir DIR] [--threads 1 2]``.
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
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from vae_hub import VAE, load_mnist  # noqa: E402
from vae_hub.data import to_unit  # noqa: E402
from vae_hub.objectives import IWAE_BLOCK_ROWS, _Workers, iwae_bound, iwae_bound_reference  # noqa: E402


def bce(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The NLL as this repository first wrote it (commit ccc1107): BCE with logits, summed over pixels."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def iwae_bound_bce(model: VAE, x: torch.Tensor, k: int, chunk: int, generator: torch.Generator) -> torch.Tensor:
    """The plain chunked bound as first written in this repository, drawing the same noise."""
    return iwae_bound_reference(model, x, k, chunk, generator, nll=bce)


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
        for fn in (iwae_bound_bce, iwae_bound_reference, iwae_bound):  # warm-up, all three alike
            bound_seconds(fn, model, x[:20], 50, args.chunk, args.batch)
        runs: dict[str, list[float]] = {name: [] for name in ("bce", "ref", "fast", "limit")}
        cpu: dict[str, list[float]] = {name: [] for name in ("bce", "ref", "fast")}
        values: dict[str, torch.Tensor] = {}
        for _ in range(args.repeats):  # interleaved, so that a change in the machine's load hits them all
            for name, fn in (("bce", iwae_bound_bce), ("ref", iwae_bound_reference), ("fast", iwae_bound)):
                t, c, values[name] = bound_seconds(fn, model, x, args.k, args.chunk, args.batch)
                runs[name].append(t)
                cpu[name].append(c)
            runs["limit"].append(matmul_seconds(model, args.k * len(x)))
        s = {name: statistics.median(v) for name, v in runs.items()}
        c = {name: statistics.median(v) for name, v in cpu.items()}
        row = {
            "threads": threads,
            "images": len(x),
            "k": args.k,
            "plain_bce_s": round(s["bce"], 3),
            "reference_s": round(s["ref"], 3),
            "fast_s": round(s["fast"], 3),
            "matmul_limit_s": round(s["limit"], 3),
            "speedup_over_plain_bce": round(s["bce"] / s["fast"], 2),
            "speedup_over_reference": round(s["ref"] / s["fast"], 2),
            "fast_over_limit": round(s["fast"] / s["limit"], 2),
            "cpu_s": {name: round(v, 3) for name, v in c.items()},
            "cpu_speedup_over_plain_bce": round(c["bce"] / c["fast"], 2),
            "cpu_speedup_over_reference": round(c["ref"] / c["fast"], 2),
            "max_abs_diff_nats": {name: (values["fast"] - values[name]).abs().max().item() for name in ("bce", "ref")},
            "mean_log_likelihood": values["fast"].mean().item(),
            "runs_s": {name: [round(t, 3) for t in v] for name, v in runs.items()},
            "load_average_1min": os.getloadavg()[0],
        }
        results.append(row)
        print(
            f"{threads} thread(s), {len(x)} images, K={args.k}: plain (BCE) {s['bce']:.2f} s, reference (fused "
            f"NLL) {s['ref']:.2f} s, fast {s['fast']:.2f} s; speed-up {s['bce'] / s['fast']:.1f}x over plain, "
            f"{s['ref'] / s['fast']:.1f}x over the reference (CPU time {c['bce'] / c['fast']:.1f}x, "
            f"{c['ref'] / c['fast']:.1f}x); matmul alone {s['limit']:.2f} s (fast at {s['fast'] / s['limit']:.2f}x "
            f"it); max |fast - plain| {row['max_abs_diff_nats']['bce']:.1e}, |fast - reference| "
            f"{row['max_abs_diff_nats']['ref']:.1e} nats; load {row['load_average_1min']:.1f}",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Benchmark: a training epoch of ``training.Trainer`` against the pytorch/examples VAE pipeline, in one process.

Per epoch of 60,000 MNIST images in batches of 256 it times, in interleaved rounds (medians reported):
  1. the pytorch/examples pipeline: ``torchvision.datasets.MNIST`` with ``ToTensor`` through a shuffled
     ``DataLoader``, a plain Adam loop over the same network and its loss (BCE summed, closed-form KL);
  2. the project's ``Trainer`` (in-memory batches, fused Adam, the recipe's schedules, autograd), eager;
  3. with ``--compile``, the same trainer with ``torch.compile`` (the compile time is reported apart);
at each thread count of ``--threads`` (default 1 and 2), and prints the times and the ratios. ``--busy`` adds a
busy-looping process on one core during the timing, as on a shared machine, to choose the thread default.

    python benchmarks/bench_train.py [--data-dir DIR] [--threads 1 2] [--rounds 5] [--compile] [--busy]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from training import Trainer, recipe  # noqa: E402
from vae_hub import VAE, MNISTBatches, load_mnist  # noqa: E402
from vae_hub.data import prepare_root  # noqa: E402


def examples_epoch(model: VAE, loader: DataLoader, optimizer: torch.optim.Optimizer) -> None:
    """pytorch/examples vae/main.py's train loop, on our network (its loss: BCE summed plus the closed-form KL)."""
    model.train()
    for x, _ in loader:
        x = x.view(-1, 784)
        out = model(x)
        bce = F.binary_cross_entropy(torch.sigmoid(out.logits), x, reduction="sum")
        kld = -0.5 * torch.sum(1 + out.logvar - out.mu.pow(2) - out.logvar.exp())
        optimizer.zero_grad()
        (bce + kld).backward()
        optimizer.step()


def spin() -> None:
    while True:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--busy", action="store_true", help="keep one core busy with another process while timing")
    args = p.parse_args()
    images, labels = load_mnist("train", args.data_dir)
    root = prepare_root(args.data_dir)
    examples_loader = DataLoader(
        datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor()),
        batch_size=256,
        shuffle=True,
    )
    ours = MNISTBatches(images, labels, 256, generator=torch.Generator())
    config = recipe(epochs=1, kl_warmup_epochs=1.0)
    busy = multiprocessing.Process(target=spin, daemon=True) if args.busy else None
    if busy:
        busy.start()
    times: dict[str, list[float]] = {}
    compile_seconds = None
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            model = VAE()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            variants = {
                "pytorch/examples": lambda m=model, o=optimizer: examples_epoch(m, examples_loader, o),
                "Trainer": lambda: Trainer(config).fit("kl_wo_e", ours, progress=False),
            }
            if args.compile:
                t0 = time.perf_counter()
                Trainer(config, compile=True).fit("kl_wo_e", ours, progress=False)  # compiles (and one epoch)
                compile_seconds = time.perf_counter() - t0
                variants["Trainer, compiled"] = lambda: Trainer(config, compile=True).fit(
                    "kl_wo_e", ours, progress=False
                )
            for fn in variants.values():  # warm-up
                fn()
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    t0 = time.perf_counter()
                    fn()
                    times.setdefault(f"{name} @{threads}", []).append(time.perf_counter() - t0)
    finally:
        if busy:
            busy.terminate()
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"epoch seconds (median of {args.rounds} interleaved rounds; busy core: {args.busy}):")
    for name, seconds in medians.items():
        spread = f"{min(times[name]):.2f}–{max(times[name]):.2f}"
        print(f"  {name:28s} {seconds:7.3f} s  ({spread})")
    for threads in args.threads:
        base = medians[f"pytorch/examples @{threads}"]
        for name in ("Trainer", "Trainer, compiled"):
            if f"{name} @{threads}" in medians:
                print(
                    f"  {name} vs pytorch/examples on {threads} thread(s): {base / medians[f'{name} @{threads}']:.2f}×"
                )
    if len(args.threads) > 1:
        (a, ta), (b, tb) = ((t, medians[f"Trainer @{t}"]) for t in args.threads[:2])
        print(f"  Trainer on {b} thread(s) runs {ta / tb:.2f}× as fast as on {a}")
    if compile_seconds is not None:
        print(f"  torch.compile: first epoch including compilation {compile_seconds:.1f} s")
    print(json.dumps({"medians": medians, "compile_seconds": compile_seconds, "busy": args.busy}))


if __name__ == "__main__":
    main()

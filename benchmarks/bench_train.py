"""Benchmark: steady-state training epochs of the project's trainer against the pytorch/examples pipeline.

In one process it times, per epoch of 60,000 images in batches of 256:
  1. the pytorch/examples VAE pipeline: ``torchvision.datasets.MNIST`` with ``ToTensor`` through a
     ``DataLoader`` (batch 256, shuffled), a plain Adam loop over the same model and its own loss function;
  2. the project's ``training.Trainer`` (in-memory batches, fused loss and Adam, lr and KL schedules, hand-derived
     gradients), and the same with ``hand_derived=False`` (autograd, as under DDP);
  3. the matmul limit: the same matmuls alone, shape for shape (each Linear's forward, and its backward for the
     weight and, but for the first layer, the input), with nothing else, as the floor a step cannot go below;
  4. the trainer's step two ways on one fixed batch (loss, gradients, fused Adam): with autograd (the path DDP
     uses) and with the hand-derived ``training.step.ManualStep`` (the single-process path);
and prints the times and the ratios. For comparison with earlier numbers it also prints the limit implied by
the machine's peak (a 2048² float32 matmul, measured here too). Usage:
``python benchmarks/bench_train.py [--data-dir DIR] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from training.step import ManualStep  # noqa: E402
from training.train import RECIPE  # noqa: E402
from training.trainer import Trainer  # noqa: E402
from vae_hub import VAE, Config, MNISTBatches, load_mnist  # noqa: E402
from vae_hub.data import prepare_root  # noqa: E402
from vae_hub.objectives import elbo_terms, training_objective  # noqa: E402


def matmul_peak_flops(n: int = 2048, seconds: float = 2.0) -> float:
    """float32 FLOP/s of an n×n by n×n matmul, the best of repeated timings."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def training_flops_per_image(model: VAE) -> float:
    """Matmul FLOPs of one training step per image: forward 2·(in·out) per Linear, backward twice that."""
    macs = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 3 * 2 * macs


@torch.no_grad()
def matmul_epoch_seconds(model: VAE, batch: int, steps: int, repeats: int = 3) -> float:
    """Seconds for one epoch of the training step's matmuls alone, the best of ``repeats``.

    Per Linear (in, out) and step: the forward ``addmm`` (batch, in) → (batch, out); the weight gradient
    (out, batch) @ (batch, in); the input gradient (batch, out) @ (out, in), except for the first layer, whose
    input is the data. Random operands, preallocated outputs: only the arithmetic is timed.
    """
    calls = []
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        w, b = lin.weight.detach(), lin.bias.detach()
        a, g = torch.randn(batch, lin.in_features), torch.randn(batch, lin.out_features)
        y, gw, gx = torch.empty_like(g), torch.empty_like(w), torch.empty_like(a)
        calls.append(lambda b=b, a=a, w=w, y=y: torch.addmm(b, a, w.t(), out=y))
        calls.append(lambda g=g, a=a, gw=gw: torch.mm(g.t(), a, out=gw))
        if i > 0:
            calls.append(lambda g=g, w=w, gx=gx: torch.mm(g, w, out=gx))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            for call in calls:
                call()
        best = min(best, time.perf_counter() - t0)
    return best


def examples_loss(model: VAE, data: torch.Tensor) -> torch.Tensor:
    """pytorch/examples/vae's ``loss_function``: BCE on sigmoid outputs, summed, plus the closed-form KL."""
    out = model(data)
    bce = F.binary_cross_entropy(torch.sigmoid(out.logits), data.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + out.logvar - out.mu.pow(2) - out.logvar.exp())
    return (bce + kld) / len(data)


def examples_pipeline_epochs(root: Path) -> Iterator[float]:
    """pytorch/examples/vae: MNIST + ToTensor + DataLoader(batch 256, shuffle), Adam, its own loss function,
    loss.item() per step. The same network as ours. Yields the seconds of each epoch, one per ``next``."""
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=256, shuffle=True)
    torch.manual_seed(0)
    model = VAE(Config())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    while True:
        t0 = time.perf_counter()
        train_loss = 0.0
        for data, _ in loader:
            optimizer.zero_grad()
            loss = examples_loss(model, data)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        yield time.perf_counter() - t0


def trainer_epoch(images: torch.Tensor, labels: torch.Tensor, regularizer: str, hand_derived: bool = True) -> float:
    """Seconds of the second epoch of a fresh ``Trainer.fit`` with the bundled recipe (the first warms up)."""
    config = Config(epochs=2, **RECIPE)
    loader = MNISTBatches(images, labels, 256, shuffle=True, generator=torch.Generator(), device=config.torch_device)
    _, history = Trainer(config, hand_derived=hand_derived).fit(regularizer, loader, progress=False)
    return history[-1]["seconds"]


def step_seconds(images: torch.Tensor, regularizer: str, manual: bool, steps: int) -> float:
    """Seconds for ``steps`` training steps on one batch of 256 (KL weight 0.5), after 20 warm-up steps."""
    torch.manual_seed(0)
    model = VAE(Config())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x, gen = images[:256].reshape(256, -1).float() / 255, torch.Generator().manual_seed(1)
    step = ManualStep(model, regularizer)

    def one() -> None:
        if manual:
            loss = step(x, gen, 0.5).loss
        else:
            out = model(x, generator=gen)
            loss = training_objective(elbo_terms(out.logits, x, out.mu, out.logvar, out.z, regularizer), 0.5)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        loss.item()
        optimizer.step()

    onednn, torch.backends.mkldnn.enabled = torch.backends.mkldnn.enabled, False  # as the trainer runs
    try:
        for _ in range(20):
            one()
        t0 = time.perf_counter()
        for _ in range(steps):
            one()
        return time.perf_counter() - t0
    finally:
        torch.backends.mkldnn.enabled = onednn


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $VAE_HUB_DATA, else ./data)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of (limit, trainer, pipeline) epochs, interleaved")
    p.add_argument("--regularizer", default="kl_wo_e")
    p.add_argument("--threads", type=int, help="torch CPU threads for all (on a loaded 2-core machine, 1 is steadier)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    root = prepare_root(args.data_dir, download=False)
    images, labels = load_mnist("train", root, download=False)
    peak = matmul_peak_flops()
    flops_epoch = training_flops_per_image(VAE(Config())) * len(images)
    peak_limit = flops_epoch / peak
    steps = -(-len(images) // 256)

    pipeline = examples_pipeline_epochs(root)
    next(pipeline)  # warm-up: the first epoch also reads the dataset
    # Interleaved rounds, so that a change in the machine's load hits all three alike; a ratio is taken per round.
    limit, ours, autograd, pipe, loads, auto_steps, manual_steps = [], [], [], [], [], [], []
    for _ in range(args.rounds):
        limit.append(matmul_epoch_seconds(VAE(Config()), 256, steps, repeats=1))
        ours.append(trainer_epoch(images, labels, args.regularizer))
        autograd.append(trainer_epoch(images, labels, args.regularizer, hand_derived=False))
        pipe.append(next(pipeline))
        auto_steps.append(step_seconds(images, args.regularizer, manual=False, steps=steps))
        manual_steps.append(step_seconds(images, args.regularizer, manual=True, steps=steps))
        loads.append(os.getloadavg()[0])
    limit_s, ours_s, pipe_s = (statistics.median(v) for v in (limit, ours, pipe))
    fraction = statistics.median(lim / t for lim, t in zip(limit, ours))
    speedup = statistics.median(p / t for p, t in zip(pipe, ours))
    auto_ms, manual_ms = (statistics.median(v) / steps * 1e3 for v in (auto_steps, manual_steps))
    autograd_s = statistics.median(autograd)
    epoch_gain = statistics.median(a / t for a, t in zip(autograd, ours))
    autograd_fraction = statistics.median(lim / a for lim, a in zip(limit, autograd))
    manual_gain = statistics.median(a / m for a, m in zip(auto_steps, manual_steps))
    result = {
        "device": str(Config().torch_device),
        "threads": torch.get_num_threads(),
        "load_average_1min": [round(v, 2) for v in loads],
        "pipeline_s_per_epoch": round(pipe_s, 3),
        "trainer_s_per_epoch": round(ours_s, 3),
        "matmul_limit_s_per_epoch": round(limit_s, 3),
        "speedup": round(speedup, 2),
        "trainer_limit_fraction": round(fraction, 3),
        "pipeline_limit_fraction": round(statistics.median(lim / t for lim, t in zip(limit, pipe)), 3),
        "trainer_autograd_s_per_epoch": round(autograd_s, 3),
        "hand_derived_epoch_speedup": round(epoch_gain, 2),
        "trainer_autograd_limit_fraction": round(autograd_fraction, 3),
        "step_ms_autograd": round(auto_ms, 3),
        "step_ms_manual": round(manual_ms, 3),
        "manual_step_speedup": round(manual_gain, 2),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "model_gflop_per_epoch": round(flops_epoch / 1e9, 1),
        "peak_limit_s_per_epoch": round(peak_limit, 3),
        "trainer_peak_fraction": round(peak_limit / ours_s, 3),
        "limit_epochs_s": [round(t, 3) for t in limit],
        "trainer_epochs_s": [round(t, 3) for t in ours],
        "trainer_autograd_epochs_s": [round(t, 3) for t in autograd],
        "pipeline_epochs_s": [round(t, 3) for t in pipe],
    }
    print(
        f"pipeline (torchvision ToTensor + DataLoader): {pipe_s:.2f} s/epoch\n"
        f"trainer (training.Trainer):                   {ours_s:.2f} s/epoch\n"
        f"trainer with autograd (hand_derived=False):   {autograd_s:.2f} s/epoch ({autograd_fraction:.0%} of the "
        f"limit; the hand-derived step is {epoch_gain:.2f}x)\n"
        f"matmul limit (the same matmuls alone):        {limit_s:.2f} s/epoch\n"
        f"speed-up {speedup:.1f}x; trainer at {fraction:.0%} of the matmul limit (median of per-round ratios); "
        f"{torch.get_num_threads()} thread(s), load average {min(loads):.1f}–{max(loads):.1f}\n"
        f"one step (batch 256, with Adam): autograd {auto_ms:.2f} ms, hand-derived {manual_ms:.2f} ms "
        f"({manual_gain:.2f}x)\n"
        f"(peak {peak / 1e9:.0f} GFLOP/s on a 2048² matmul would allow {peak_limit:.2f} s/epoch: trainer at "
        f"{peak_limit / ours_s:.0%} of that)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

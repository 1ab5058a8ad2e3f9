"""Train the bundled models: ``python -m training.train --regularizer both --epochs 50 --out weights/``.

For each variant it writes a ``save_pretrained`` folder ``<out>/<variant>/`` with config.json,
model.safetensors, metrics.json, the figures and a model card (README.md). Every epoch ends in an atomic
checkpoint under ``--ckpt-dir``; ``--resume`` continues from it and ends bit-identical to an uninterrupted run.

Exit codes: 0 done, 1 training stopped (non-finite loss, unusable checkpoint), 2 bad input (e.g. no MNIST),
130 interrupted (the last completed epoch's checkpoint is intact).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from vae_hub import Config, DataError, MNISTBatches, load_mnist
from vae_hub.objectives import REGULARIZERS

from .card import METRICS_NAME, write_model_card
from .checkpoint import CKPT_NAME, CheckpointError, atomic_write_text
from .figures import write_figures
from .trainer import Trainer, TrainingError

# The recipe of the bundled weights: the original architecture, batch size, optimizer (Adam) and objective,
# with a higher peak learning rate, a short warm-up and a cosine decay to zero (see docs/training.md).
RECIPE = {
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "warmup_epochs": 1.0,
    "min_lr": 0.0,
    "init_output_bias": True,
    "init_logvar": -4.0,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--regularizer", choices=[*REGULARIZERS, "both"], default="both")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $VAE_HUB_DATA, else ./data)")
    p.add_argument("--download", action="store_true", help="download MNIST there if it is missing")
    p.add_argument("--out", type=Path, default=Path("weights"), help="parent folder of the <variant>/ folders")
    p.add_argument("--ckpt-dir", type=Path, default=Path("runs/checkpoints"), help="parent of per-variant checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the last completed epoch's checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=RECIPE["lr"], help="peak learning rate")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default=RECIPE["lr_schedule"])
    p.add_argument("--warmup-epochs", type=float, default=RECIPE["warmup_epochs"])
    p.add_argument("--min-lr", type=float, default=RECIPE["min_lr"])
    p.add_argument(
        "--init-output-bias",
        action=argparse.BooleanOptionalAction,
        default=RECIPE["init_output_bias"],
        help="start the decoder's output bias at logit(mean training image)",
    )
    p.add_argument(
        "--init-logvar",
        type=lambda s: None if s.lower() == "none" else float(s),
        default=RECIPE["init_logvar"],
        help="initial bias of the encoder's log-variance head (default -4; 'none' keeps PyTorch's default)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, mps")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice, one per core)")
    p.add_argument("--limit", type=int, help="train on the first N training images only (for quick runs)")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test images only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _subset(images: torch.Tensor, labels: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    return (images, labels) if n is None else (images[:n], labels[:n])


def train_variant(
    regularizer: str,
    config: Config,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
    out: Path,
    ckpt_dir: Path,
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    """Train one variant and write its folder; return a summary."""
    device = config.torch_device
    train = MNISTBatches(*data["train"], config.batch_size, shuffle=True, generator=torch.Generator(), device=device)
    test = MNISTBatches(*data["test"], 1000, shuffle=False, device=device)
    model, history = Trainer(config).fit(
        regularizer, train, test, ckpt_dir=ckpt_dir / regularizer, resume=resume, progress=progress
    )
    folder = out / regularizer
    model.cpu().save_pretrained(folder)
    metrics = {
        "regularizer": regularizer,
        "epochs": config.epochs,
        "train_images": len(data["train"][0]),
        "test_images": len(data["test"][0]),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_seconds": sum(h["seconds"] for h in history),
        "note": "test_* use one sample and the closed-form KL for both regularizers; train_* are running means "
        "over the epoch (train_objective is the optimised estimator, train_kl the closed form)",
        "history": history,
    }
    atomic_write_text(folder / METRICS_NAME, json.dumps(metrics, indent=1) + "\n")
    write_figures(model, data["test"][0], folder, history)
    write_model_card(folder)
    last = history[-1]
    return {
        "regularizer": regularizer,
        "folder": str(folder),
        "test_nelbo": last.get("test_nelbo"),
        "train_seconds": round(metrics["train_seconds"], 1),
        "seconds_per_epoch": round(metrics["train_seconds"] / len(history), 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.epochs <= 0 or args.batch_size <= 0 or (args.threads is not None and args.threads <= 0):
        print("error: --epochs, --batch-size and --threads must be positive", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = Config(
            batch_size=args.batch_size,
            epochs=args.epochs,
            lr=args.lr,
            device=args.device,
            seed=args.seed,
            lr_schedule=args.lr_schedule,
            warmup_epochs=args.warmup_epochs,
            min_lr=args.min_lr,
            init_output_bias=args.init_output_bias,
            init_logvar=args.init_logvar,
        )
        config.torch_device  # noqa: B018 - an unknown device name fails here, before any work
        data = {
            "train": _subset(*load_mnist("train", args.data_dir, download=args.download), args.limit),
            "test": _subset(*load_mnist("test", args.data_dir, download=args.download), args.test_limit),
        }
    except (DataError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    variants = list(REGULARIZERS) if args.regularizer == "both" else [args.regularizer]
    for reg in variants:
        try:
            summary = train_variant(reg, config, data, args.out, args.ckpt_dir, args.resume, not args.no_progress)
        except (TrainingError, CheckpointError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            ckpt = args.ckpt_dir / reg / CKPT_NAME
            print(
                f"\ninterrupted: the last completed epoch's checkpoint is intact at {ckpt}; "
                "continue with the same command plus --resume",
                file=sys.stderr,
            )
            return 130
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

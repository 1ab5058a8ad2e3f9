"""Train the bundled models: ``python -m training.train --regularizer both --epochs 50 --out weights/``.

For each variant it writes a ``save_pretrained`` folder ``<out>/<variant>/`` with config.json,
model.safetensors, metrics.json, the figures and a model card (README.md). Every epoch ends in an atomic
checkpoint under ``--ckpt-dir``; ``--resume`` continues from it and ends bit-identical to an uninterrupted run.

Under ``torchrun`` it trains one model with ``DistributedDataParallel`` over all the processes
(``torchrun --standalone --nproc-per-node=2 -m training.train ...``); rank 0 writes everything.

Exit codes: 0 done, 1 training stopped (non-finite loss, unusable checkpoint, a failed write), 2 bad input (e.g. no
MNIST, an unwritable --out), 130 interrupted (the last completed epoch's checkpoint is intact).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from vae_hub import Config, DataError, MNISTBatches, load_mnist
from vae_hub.config import LR_SCHEDULES
from vae_hub.files import CKPT_NAME, METRICS_NAME, TRAINING_ARGS_NAME, atomic_write_text
from vae_hub.objectives import REGULARIZERS

from . import distributed
from .card import write_model_card
from .checkpoint import CheckpointError, load_checkpoint
from .distributed import ShardedBatches, World, replica_digests
from .figures import write_figures
from .metrics import active_dimensions
from .trainer import RECIPE, Trainer, TrainingError, recipe

__all__ = ["RECIPE", "build_parser", "main", "train_variant"]

# Help for each training field of Config. The options are generated from Config's fields (names, types and
# defaults from the recipe), so a new field cannot be forgotten here: build_parser refuses one without help.
FIELD_HELP = {
    "batch_size": "images per optimizer step",
    "epochs": "passes over the training images",
    "lr": "peak learning rate (Adam)",
    "device": "auto (CUDA, then MPS, else CPU), cpu, cuda, mps",
    "seed": "seed of the initial weights, the shuffling and the noise; same seed, same weights",
    "lr_schedule": "constant, or cosine: linear warm-up over --warmup-epochs, then cosine decay to --min-lr",
    "warmup_epochs": "epochs of linear learning-rate warm-up (cosine schedule)",
    "min_lr": "final learning rate of the cosine schedule",
    "init_output_bias": "start the decoder's output bias at logit(mean training image)",
    "init_logvar": "initial bias of the encoder's log σ² outputs ('none' keeps PyTorch's default)",
    "kl_warmup_epochs": "epochs over which the KL term's weight rises linearly from 0 to 1 (0 = off)",
}
SKIPPED_FIELDS = ("input_dim", "act_fun", "regularizer")  # fixed by the data, the design, and --regularizer


def _optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def _add_config_options(p: argparse.ArgumentParser) -> None:
    defaults = recipe()
    for f in dataclasses.fields(Config):
        if f.name in SKIPPED_FIELDS:
            continue
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if f.name == "hidden_dims":
            p.add_argument(
                flag,
                type=int,
                nargs="+",
                default=default,
                metavar="N",
                help="encoder widths; the last holds μ and log σ², so the latent is half of it "
                "(128 32 16 4: the original 2-D network; 128 32 16 8: 4-D)",
            )
            continue
        if f.name not in FIELD_HELP:
            raise RuntimeError(f"Config.{f.name} has no command-line help in training.train.FIELD_HELP")
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(str(f.type), _optional_float)
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=FIELD_HELP[f.name])
        elif f.name == "lr_schedule":
            p.add_argument(flag, choices=LR_SCHEDULES, default=default, help=FIELD_HELP[f.name])
        else:
            p.add_argument(flag, type=kind, default=default, help=FIELD_HELP[f.name])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--regularizer", choices=[*REGULARIZERS, "both"], default="both", help="the KL estimator")
    _add_config_options(p)
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $VAE_HUB_DATA, else ./data)")
    p.add_argument("--download", action="store_true", help="download MNIST there if it is missing")
    p.add_argument("--out", type=Path, default=Path("weights"), help="parent folder of the <variant>/ folders")
    p.add_argument("--ckpt-dir", type=Path, default=Path("runs/checkpoints"), help="parent of per-variant checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the last completed epoch's checkpoint")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice, one per core)")
    p.add_argument("--limit", type=int, help="train on the first N training images only (for quick runs)")
    p.add_argument("--test-limit", type=int, help="evaluate on the first N test images only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _check_writable(folder: Path, option: str) -> None:
    """Fail before training, not after it, when ``folder`` cannot take files (by creating and deleting one)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise RuntimeError(f"{option} {folder} is not writable ({e.strerror or e})") from e


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
    world: World | None = None,
) -> dict[str, Any] | None:
    """Train one variant and write its folder; return a summary (``None`` on ranks other than 0, which write
    nothing). Under ``torchrun`` (``world``) each rank trains on its shard and ``--batch-size`` is per process."""
    world = world or World()
    device = config.torch_device
    if world.size > 1:
        train: MNISTBatches = ShardedBatches(
            *data["train"], config.batch_size, shuffle=True, generator=torch.Generator(), device=device, world=world
        )
        test: MNISTBatches = ShardedBatches(*data["test"], 1000, shuffle=False, device=device, world=world)
    else:
        train = MNISTBatches(
            *data["train"], config.batch_size, shuffle=True, generator=torch.Generator(), device=device
        )
        test = MNISTBatches(*data["test"], 1000, shuffle=False, device=device)
    model, history = Trainer(config).fit(
        regularizer, train, test, ckpt_dir=ckpt_dir / regularizer, resume=resume, progress=progress
    )
    active = active_dimensions(model, test)  # every rank takes part: the variance is over all the shards
    digests = replica_digests(model)
    if len(set(digests)) != 1:
        raise TrainingError(f"the {world.size} processes ended with different weights (SHA-256 {digests})")
    if not all(bool(t.isfinite().all()) for t in model.state_dict().values()):
        raise TrainingError("the trained weights hold NaN or infinite values; nothing was written")
    if not world.is_main:
        return None
    folder = out / regularizer
    model.cpu().save_pretrained(folder)
    atomic_write_text(folder / TRAINING_ARGS_NAME, json.dumps(model.config.training_args(), indent=2) + "\n")
    metrics = {
        "regularizer": regularizer,
        "epochs": config.epochs,
        "train_images": len(data["train"][0]),
        "test_images": len(data["test"][0]),
        "device": str(device),
        "world_size": world.size,  # processes; each took batch_size images per step
        "global_batch_size": config.batch_size * world.size,
        "replica_weights_sha256": digests,  # one per process, all equal
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_seconds": sum(h["seconds"] for h in history),
        **active,
        "note": "test_* use one sample and the closed-form KL for both regularizers; train_* are running means "
        "over the epoch (train_objective is the optimised estimator, train_kl the closed form)",
        "history": history,
    }
    atomic_write_text(folder / METRICS_NAME, json.dumps(metrics, indent=1) + "\n")
    write_figures(model, data["test"][0], folder, history, test_labels=data["test"][1])
    write_model_card(folder)
    last = history[-1]
    return {
        "regularizer": regularizer,
        "folder": str(folder),
        "test_nelbo": last.get("test_nelbo"),
        "active_dims": metrics["active_dims"],
        "train_seconds": round(metrics["train_seconds"], 1),
        "seconds_per_epoch": round(metrics["train_seconds"] / len(history), 3),
    }


def _kept(ckpt: Path) -> str:
    try:
        return f"the last good checkpoint (epoch {load_checkpoint(ckpt).epoch}) is kept at {ckpt}"
    except CheckpointError:
        return "no usable checkpoint was kept"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.epochs <= 0 or args.batch_size <= 0 or (args.threads is not None and args.threads <= 0):
        print("error: --epochs, --batch-size and --threads must be positive", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        world = distributed.world_from_env()
        config = Config(
            **{f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if f.name not in SKIPPED_FIELDS}
        )
        config.torch_device  # noqa: B018 - an unknown device name fails here, before any work
        _check_writable(args.out, "--out")
        _check_writable(args.ckpt_dir, "--ckpt-dir")
        data = {
            "train": _subset(*load_mnist("train", args.data_dir, download=args.download), args.limit),
            "test": _subset(*load_mnist("test", args.data_dir, download=args.download), args.test_limit),
        }
        if len(data["train"][0]) < world.size:
            raise ValueError(f"{len(data['train'][0])} training images cannot be shared by {world.size} processes")
        distributed.setup(world, config.torch_device)
    except (DataError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        return _train_all(args, config, data, world)
    finally:
        distributed.teardown()  # also after an error, so that no rank is left waiting for the others


def _train_all(args: argparse.Namespace, config: Config, data: dict, world: World) -> int:
    variants = list(REGULARIZERS) if args.regularizer == "both" else [args.regularizer]
    for reg in variants:
        ckpt = args.ckpt_dir / reg / CKPT_NAME
        try:
            summary = train_variant(
                reg, config, data, args.out, args.ckpt_dir, args.resume, not args.no_progress, world
            )
        except (TrainingError, CheckpointError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except (OSError, SafetensorError) as e:  # writing the model folder failed (EFBIG, ENOSPC, ...)
            print(
                f"error: cannot write {args.out / reg} ({getattr(e, 'strerror', None) or e}); {_kept(ckpt)}: "
                "free some space and rerun with --resume",
                file=sys.stderr,
            )
            return 1
        except KeyboardInterrupt:
            print(
                f"\ninterrupted: the last completed epoch's checkpoint is intact at {ckpt}; "
                "continue with the same command plus --resume",
                file=sys.stderr,
            )
            return 130
        if summary is not None:
            print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

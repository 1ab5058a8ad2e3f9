"""Train models: ``python -m training.train --regularizer both --out runs/train``.

Each variant gets a ``save_pretrained`` folder ``<out>/<variant>/``: config.json, model.safetensors,
training_args.json, metrics.json, figures and a model card, written all or nothing when training ends (a
failure leaves an earlier folder as it was). Every epoch ends in an atomic checkpoint under ``--ckpt-dir``;
``--resume`` continues from it, bit-identical to an uninterrupted run. Under ``torchrun`` one model trains with
``DistributedDataParallel`` over all the processes, and rank 0 writes.

Exit codes: 0 done, 1 training stopped (non-finite loss, unusable checkpoint, a failed write), 2 bad input,
130 interrupted (the last completed epoch's checkpoint is intact).
"""

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from training import recipe
from training.cli import Parser, at_least, fail, replace_folder
from vae_hub.config import REGULARIZERS, Config

# every training setting but input_dim (fixed by the data) and regularizer (chosen by --regularizer)
SETTINGS = [f for f in dataclasses.fields(Config) if f.name not in ("input_dim", "regularizer")]


def build_parser() -> Parser:
    p = Parser("python -m training.train", __doc__.split("\n\n")[0])
    p.add_argument("--regularizer", choices=[*REGULARIZERS, "both"], default="both", help="the KL estimator(s)")
    defaults = recipe()
    for f in SETTINGS:  # with its help text from the dataclass
        flag, default, kind = "--" + f.name.replace("_", "-"), getattr(defaults, f.name), str(f.type)
        extra: dict[str, Any] = {"default": default, "help": f.metadata["help"]}
        if kind == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **extra)
        elif kind == "list[int]":
            p.add_argument(flag, type=int, nargs="+", metavar="N", **extra)
        elif kind == "float | None":
            p.add_argument(flag, type=lambda s: None if s.lower() == "none" else float(s), **extra)
        else:
            p.add_argument(flag, type={"int": int, "float": float, "str": str}[kind], **extra)
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $VAE_HUB_DATA, else ./data)")
    p.add_argument("--download", action="store_true", help="download MNIST there if it is missing")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="parent folder of the <variant>/ folders")
    p.add_argument("--ckpt-dir", type=Path, default=Path("runs/checkpoints"), help="parent of per-variant checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the last completed epoch's checkpoint")
    p.add_argument("--threads", type=at_least(1), default=1, help="CPU threads (more pay only on an idle machine)")
    p.add_argument("--limit", type=at_least(1), help="train on the first N training images only")
    p.add_argument("--test-limit", type=at_least(1), help="evaluate on the first N test images only")
    p.add_argument("--compile", action="store_true", help="torch.compile the model and its loss (faster epochs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = Config(**{f.name: getattr(args, f.name) for f in SETTINGS})
    except ValueError as e:
        return fail(str(e))
    import torch  # only now: --help and bad options answer without it
    from safetensors import SafetensorError

    from training.trainer import TrainingError, resolve_device
    from vae_hub import DataError, load_mnist

    torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        device = resolve_device(config.device)
        for folder, option in ((args.out, "--out"), (args.ckpt_dir, "--ckpt-dir")):
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise OSError(f"{option} {folder} is not writable")
        limits = {"train": args.limit, "test": args.test_limit}
        data = {s: [t[: limits[s]] for t in load_mnist(s, args.data_dir, download=args.download)] for s in limits}
        if len(data["train"][0]) < world:
            raise ValueError(f"{len(data['train'][0])} training images cannot be shared by {world} processes")
    except (TrainingError, DataError, OSError, ValueError) as e:
        return fail(str(e))
    if world > 1:  # torchrun started us: join the others (gloo on the CPU, nccl on CUDA, one GPU per process)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        config = dataclasses.replace(config, device=str(device))
    try:
        for regularizer in REGULARIZERS if args.regularizer == "both" else [args.regularizer]:
            ckpt = args.ckpt_dir / regularizer
            try:
                summary = train_variant(dataclasses.replace(config, regularizer=regularizer), data, args, device)
            except TrainingError as e:  # CheckpointError too
                return fail(str(e), 1)
            except (OSError, SafetensorError) as e:  # writing the folder failed (ENOSPC, EFBIG…): the old one is intact
                why = getattr(e, "strerror", None) or e
                kept = f"the checkpoint in {ckpt} is kept: free some space and rerun with --resume"
                return fail(f"cannot write {args.out / regularizer} ({why}); {kept}", 1)
            except KeyboardInterrupt:
                intact = f"the last completed epoch's checkpoint is intact in {ckpt}"
                print(f"\ninterrupted: {intact}; continue with the same command plus --resume", file=sys.stderr)
                return 130
            if summary is not None:
                print(json.dumps(summary))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # also after an error: no rank is left waiting
    return 0


def train_variant(config: Config, data: dict, args: Any, device: Any) -> dict[str, Any] | None:
    """Train one variant on ``device`` and write its folder; return a summary (``None`` on ranks other than 0)."""
    import torch

    from training.card import write_card, write_figures
    from training.trainer import Trainer, TrainingError, active_dimensions, distributed, weights_digest
    from vae_hub.data import MNISTBatches, binarize

    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed() else (0, 1)
    shard = {"rank": rank, "world_size": world}
    train = MNISTBatches(*data["train"], config.batch_size, True, torch.Generator(), device, config.binarize, **shard)
    test_images = binarize(data["test"][0]) if config.binarize else data["test"][0]  # the binarized-MNIST protocol
    test = MNISTBatches(test_images, data["test"][1], 1000, False, device=device, **shard)
    fit = {"ckpt_dir": args.ckpt_dir / config.regularizer, "resume": args.resume, "progress": not args.no_progress}
    model, history = Trainer(config, compile=args.compile).fit(config.regularizer, train, test, **fit)
    active = active_dimensions(model, test)  # every rank takes part: the variance is over all the shards
    digests = [weights_digest(model)] * world
    if world > 1:
        torch.distributed.all_gather_object(digests, digests[rank])  # every rank's own digest, in rank order
    if len(set(digests)) != 1:
        raise TrainingError(f"the {world} processes ended with different weights (SHA-256 {digests})")
    if rank > 0:
        return None
    model = model.cpu()
    metrics = {
        "regularizer": config.regularizer,
        "epochs": config.epochs,
        "train_images": len(data["train"][0]),
        "test_images": len(data["test"][0]),
        "binarized_training": config.binarize,
        "device": str(device),
        "world_size": world,
        "global_batch_size": config.batch_size * world,
        "replica_weights_sha256": digests,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_seconds": sum(h["seconds"] for h in history),
        **active,
        "test_protocol": "binarized (seed 0)" if config.binarize else "grey levels",
        "note": "test_* use one sample and the closed-form KL for both estimators; train_* are running means over "
        "the epoch (train_objective is the optimised estimator, train_kl the closed form)",
        "history": history,
    }

    def fill(folder: Path) -> None:
        model.save_pretrained(folder)
        (folder / "training_args.json").write_text(json.dumps(config.training_args(), indent=2) + "\n")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        write_figures(model, test_images, data["test"][1], folder, history)
        write_card(folder)

    folder = args.out / config.regularizer
    replace_folder(folder, fill)
    return {
        "regularizer": config.regularizer,
        "folder": str(folder),
        "test_nelbo": round(history[-1]["test_nelbo"], 3),
        "active_dims": active["active_dims"],
        "train_seconds": round(metrics["train_seconds"], 1),
    }


if __name__ == "__main__":
    sys.exit(main())

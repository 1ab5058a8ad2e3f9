"""Crash-safe training checkpoints: one safetensors file, no pickle, replaced atomically.

A checkpoint holds everything an uninterrupted run would still have in memory after an epoch, so that
resuming from it ends bit-identical: the model, the optimizer's state (moments and step counts), the RNG
states (the loader's shuffling generator, the reparameterization-noise generator, torch's global RNG),
the epoch number, the history and the config. Tensors go into the safetensors body; everything else is
JSON in its string metadata.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import Tensor

from vae_hub.files import CKPT_NAME, atomic_write_bytes

__all__ = ["CKPT_NAME", "CheckpointError", "TrainingState", "load_checkpoint", "save_checkpoint"]

FORMAT = "vae-hub-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not match the run; the message says what and where."""


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete ``.tmp`` files a killed writer left behind (they are never read)."""
    folder = Path(folder)
    stale = list(folder.glob(".*.tmp")) if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


@dataclass
class TrainingState:
    """What a checkpoint restores. ``epoch`` counts completed epochs."""

    epoch: int
    config: dict[str, Any]
    history: list[dict[str, Any]]
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Tensor] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (named ``optim/<param>/<key>``) and JSON-able rest."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"optim/{idx}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    per: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split("/", 2)
        per.setdefault(int(idx), {})[key] = value
    for idx, values in meta.get("scalars", {}).items():
        per.setdefault(int(idx), {}).update(values)
    groups = meta["param_groups"]
    for g in groups:  # JSON turned tuples into lists; Adam indexes betas, but keep the original type
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"state": per, "param_groups": groups}


def save_checkpoint(path: str | os.PathLike, state: TrainingState) -> Path:
    """Serialise ``state`` and write it atomically to ``path``."""
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in state.model.items()}
    optim_tensors, optim_meta = _flatten_optimizer(state.optimizer)
    tensors.update(optim_tensors)
    tensors.update({f"rng/{k}": v.detach().cpu().contiguous() for k, v in state.rng.items()})
    metadata = {
        "format": FORMAT,
        "epoch": str(state.epoch),
        "config": json.dumps(state.config),
        "history": json.dumps(state.history),
        "optimizer": json.dumps(optim_meta),
        "extra": json.dumps(state.extra),
    }
    return atomic_write_bytes(path, save(tensors, metadata=metadata))


def load_checkpoint(path: str | os.PathLike) -> TrainingState:
    """Read a checkpoint written by :func:`save_checkpoint`; raise :class:`CheckpointError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a vae-hub checkpoint (format {meta.get('format')!r})")
        groups: dict[str, dict[str, Tensor]] = {"model": {}, "optim": {}, "rng": {}}
        for name, value in tensors.items():
            kind, _, rest = name.partition("/")
            groups[kind]["optim/" + rest if kind == "optim" else rest] = value
        return TrainingState(
            epoch=int(meta["epoch"]),
            config=json.loads(meta["config"]),
            history=json.loads(meta["history"]),
            model=groups["model"],
            optimizer=_unflatten_optimizer(groups["optim"], json.loads(meta["optimizer"])),
            rng=groups["rng"],
            extra=json.loads(meta.get("extra", "{}")),
        )
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); delete it to start afresh"
        ) from e

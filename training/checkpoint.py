"""Crash-safe training checkpoints: one safetensors file, no pickle, replaced atomically.

A checkpoint holds everything an uninterrupted run would still have in memory after an epoch, so that
resuming from it ends bit-identical: the model, the optimizer's state (moments and step counts), the RNG
states (the loader's shuffling generator, the reparameterization-noise generator, torch's global RNG),
the epoch number, the history and the config. Tensors go into the safetensors body; everything else is
JSON in its string metadata.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import Tensor, nn

from vae_hub.files import CKPT_NAME, atomic_write_bytes

__all__ = ["CKPT_NAME", "CheckpointError", "TrainingState", "check_against", "load_checkpoint", "save_checkpoint"]

FORMAT = "vae-hub-checkpoint/1"
OPTIM_KEYS = {"step", "exp_avg", "exp_avg_sq"}  # Adam's per-parameter state


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


def _refuse(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"cannot resume from {path}: {problem}; delete it to start afresh")


def _check_structure(path: Path, state: TrainingState) -> None:
    """The checks that need no model: the epoch, the history, the config, finite tensors, RNG state types."""
    if type(state.epoch) is not int or state.epoch < 1:
        raise _refuse(path, f"its epoch is {state.epoch!r}, not a completed epoch (1 or more)")
    if not isinstance(state.config, dict) or not isinstance(state.extra, dict):
        raise _refuse(path, "its config or extra metadata is not a JSON object")
    history = state.history
    if not isinstance(history, list) or len(history) != state.epoch:
        n = len(history) if isinstance(history, list) else type(history).__name__
        raise _refuse(path, f"it is at epoch {state.epoch} but its history has {n} entries")
    for i, record in enumerate(history, 1):
        if not isinstance(record, dict) or record.get("epoch") != i:
            raise _refuse(path, f"history entry {i} is not the record of epoch {i}")
    for group, tensors in (("model", state.model), ("optim", state.optimizer["state"])):
        flat = (
            tensors.items() if group == "model" else ((f"{i}/{k}", v) for i, s in tensors.items() for k, v in s.items())
        )
        for name, value in flat:
            if isinstance(value, Tensor) and value.is_floating_point() and not bool(value.isfinite().all()):
                raise _refuse(path, f"tensor {group}/{name} holds NaN or infinite values")
    for name, value in state.rng.items():
        if value.dtype != torch.uint8 or value.dim() != 1:
            raise _refuse(path, f"RNG state rng/{name} is not a byte vector ({value.dtype}, shape {list(value.shape)})")


def load_checkpoint(path: str | os.PathLike) -> TrainingState:
    """Read a checkpoint written by :func:`save_checkpoint`; raise :class:`CheckpointError` if unusable.

    Every field is checked before it is returned (see :func:`check_against` for the checks against a model).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a vae-hub checkpoint (format {meta.get('format')!r})")
        tensors = load_file(str(path))
        groups: dict[str, dict[str, Tensor]] = {"model": {}, "optim": {}, "rng": {}}
        for name, value in tensors.items():
            kind, _, rest = name.partition("/")
            if kind not in groups or not rest:
                raise _refuse(path, f"it holds an unexpected tensor {name!r}")
            groups[kind]["optim/" + rest if kind == "optim" else rest] = value
        optim_meta = json.loads(meta["optimizer"])
        if not isinstance(optim_meta, dict) or not isinstance(optim_meta.get("param_groups"), list):
            raise _refuse(path, "its optimizer metadata has no list of parameter groups")
        if not all(isinstance(g, dict) for g in optim_meta["param_groups"]):
            raise _refuse(path, "its optimizer parameter groups are not JSON objects")
        state = TrainingState(
            epoch=json.loads(meta["epoch"]),
            config=json.loads(meta["config"]),
            history=json.loads(meta["history"]),
            model=groups["model"],
            optimizer=_unflatten_optimizer(groups["optim"], optim_meta),
            rng=groups["rng"],
            extra=json.loads(meta.get("extra", "{}")),
        )
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); delete it to start afresh"
        ) from e
    _check_structure(path, state)
    return state


def _same_kind(value: Any, fresh: Any) -> bool:
    """Whether an optimizer hyper-parameter from a checkpoint has the type (and a sane value) of a fresh one."""
    if isinstance(fresh, bool) or fresh is None:
        return value is None or isinstance(value, bool)
    if isinstance(fresh, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if isinstance(fresh, tuple):
        return isinstance(value, (list, tuple)) and len(value) == len(fresh) and all(_same_kind(v, 0.0) for v in value)
    return value == fresh


def check_against(
    path: str | os.PathLike, state: TrainingState, model: nn.Module, optimizer: torch.optim.Optimizer
) -> None:
    """Refuse ``state`` unless it fits ``model`` and its fresh ``optimizer``: every tensor present, with the
    right shape and dtype, the same parameter groups, and per-parameter optimizer state of the parameter's
    shape. Load nothing; :meth:`load_state_dict` then cannot fail halfway."""
    path = Path(path)
    mine = model.state_dict()
    missing, unexpected = sorted(mine.keys() - state.model.keys()), sorted(state.model.keys() - mine.keys())
    if missing or unexpected:
        what = f"tensor model/{missing[0]} is missing" if missing else f"tensor model/{unexpected[0]} is unexpected"
        raise _refuse(path, f"{what} (it was made for another architecture?)")
    for name, ref in mine.items():
        got = state.model[name]
        if got.shape != ref.shape or got.dtype != ref.dtype:
            raise _refuse(
                path,
                f"tensor model/{name} has shape {list(got.shape)} ({got.dtype}), "
                f"the model needs {list(ref.shape)} ({ref.dtype})",
            )
    fresh = optimizer.state_dict()["param_groups"]
    groups = state.optimizer["param_groups"]
    if len(groups) != len(fresh):
        raise _refuse(path, f"its optimizer has {len(groups)} parameter groups, the run has {len(fresh)}")
    for i, (g, f) in enumerate(zip(groups, fresh)):
        if set(g) != set(f) or g["params"] != f["params"]:
            raise _refuse(path, f"optimizer parameter group {i} does not match the model's parameters")
        bad = [k for k in f if k != "params" and not _same_kind(g[k], f[k])]
        if bad:
            raise _refuse(path, f"optimizer parameter group {i} has an invalid {bad[0]!r}: {g[bad[0]]!r}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    per = state.optimizer["state"]
    if set(per) != set(range(len(params))):
        raise _refuse(path, f"its optimizer state covers parameters {sorted(per)}, the model has {len(params)}")
    for idx, values in per.items():
        if set(values) != OPTIM_KEYS:
            raise _refuse(path, f"optimizer state {idx} has {sorted(values)}, expected {sorted(OPTIM_KEYS)}")
        for key, value in values.items():
            shape = () if key == "step" else tuple(params[idx].shape)
            if not isinstance(value, Tensor) or tuple(value.shape) != shape or not value.is_floating_point():
                got = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise _refuse(path, f"optimizer state optim/{idx}/{key} is {got}, expected shape {list(shape)}")
        if float(values["step"]) < 0:
            raise _refuse(path, f"optimizer state optim/{idx}/step is negative")

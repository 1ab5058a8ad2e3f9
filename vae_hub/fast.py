"""Opt-in speed, from the library rather than by hand: the same computations compiled by ``torch.compile``.

Tested equal to :mod:`vae_hub.objectives`, which run instead where no compiler works. No process-wide state changes.
"""

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from . import objectives
from .hub import first_line


def compiled(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``torch.compile(fn)``, made at the first call (importing the compiler sets environment variables), and
    falling back to ``fn`` itself, with a warning, if compiling fails."""
    state: dict[str, Any] = {"ok": True, "fast": None}

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Tensor:
        if state["ok"]:
            try:
                state["fast"] = state["fast"] or torch.compile(fn)
                return state["fast"](*args, **kwargs)
            except Exception as e:  # inductor's errors vary with what is missing
                state["ok"] = False
                warnings.warn(f"torch.compile is not usable here ({first_line(e)}); running uncompiled", stacklevel=2)
        return fn(*args, **kwargs)

    return run


def nll_formula(logits: Tensor, x: Tensor) -> Tensor:
    """:func:`vae_hub.objectives.bernoulli_nll` as relu(l) − x·l + log(1 + e^−|l|), the same value to float rounding:
    the compiler fuses these into one vectorized loop, while ATen's log-sigmoid runs a scalar ``log1p``."""
    return (torch.relu(logits) - x * logits + torch.log(1 + torch.exp(-logits.abs()))).sum(-1)


bernoulli_nll = compiled(nll_formula)
log_importance_weights = compiled(functools.partial(objectives.log_importance_weights, nll=nll_formula))


def iwae_bound(model: torch.nn.Module, x: Tensor, k: int = 1000, chunk: int = 100, generator=None) -> Tensor:
    """:func:`vae_hub.objectives.iwae_bound` with its log-weights compiled (keep ``chunk`` and the batch size fixed
    between calls: a new shape compiles again)."""
    return objectives.iwae_bound(model, x, k, chunk, generator, log_weights=log_importance_weights)

"""Training, evaluation and publishing for vae-hub: ``python -m training.train``, ``.evaluate``, ``.push``.

The names below are imported on first use, so that ``--help`` of the command-line tools costs no torch import.
"""

from importlib import import_module
from typing import Any

from vae_hub.config import Config

# The recipe of the bundled models: the original network, batch size and optimizer with a higher peak learning
# rate, a short warm-up and a cosine decay, a data-dependent start, and a KL warm-up over the first 10 epochs
# (without it the 4-D family lets two latent dimensions collapse; see docs/training.md).
RECIPE: dict[str, Any] = {
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "warmup_epochs": 1.0,
    "min_lr": 0.0,
    "init_output_bias": True,
    "init_logvar": -4.0,
    "kl_warmup_epochs": 10.0,
}


def recipe(**overrides: Any) -> Config:
    """The config ``make train`` trains with: ``Trainer(recipe()).train_with_sgvb(loader)`` reproduces the bundled
    2-D model, ``recipe(hidden_dims=[128, 32, 16, 8])`` the 4-D one."""
    return Config(**{**RECIPE, **overrides})


_HOME = {"Trainer": "trainer", "FitResult": "trainer", "TrainingError": "trainer", "CheckpointError": "trainer"}
__all__ = sorted([*_HOME, "RECIPE", "recipe"])


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'training' has no attribute {name!r}")
    return getattr(import_module(f"training.{_HOME[name]}"), name)

"""Training, evaluation and model cards for vae-hub: ``python -m training.train`` / ``python -m training.evaluate``."""

from .card import write_model_card
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .metrics import nelbo_metrics
from .trainer import RECIPE, FitResult, Trainer, TrainingError, recipe

__all__ = [
    "CheckpointError",
    "FitResult",
    "Trainer",
    "TrainingError",
    "load_checkpoint",
    "save_checkpoint",
    "nelbo_metrics",
    "write_model_card",
    "RECIPE",
    "recipe",
]

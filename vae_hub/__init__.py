"""vae-hub: a variational autoencoder for MNIST, shipped the Hugging Face way.

The names below are imported on first use (PEP 562), so that ``import vae_hub.config`` costs no torch import.
"""

from importlib import import_module
from typing import Any

__version__ = "0.2.0"
_MODULES = {
    "config": ("Config", "VAEConfig"),
    "model": ("VAE", "VAEOutput", "WeightsError"),
    "data": ("DataError", "MNISTBatches", "load_mnist", "mnist_batches"),
    "objectives": ("Terms", "bernoulli_nll", "elbo_terms", "iwae_bound", "kl_wo_e", "sgvb"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'vae_hub' has no attribute {name!r}")
    return getattr(import_module(f"vae_hub.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return __all__

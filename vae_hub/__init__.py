"""vae-hub: a variational autoencoder for MNIST, shipped the Hugging Face way.

The names below are imported on first use (PEP 562), so that ``import vae_hub.config`` costs no torch import.
"""

from importlib import import_module
from typing import Any

__version__ = "0.2.0"
_HOME = {
    "Config": "config",
    "VAEConfig": "config",
    "VAE": "model",
    "VAEOutput": "model",
    "WeightsError": "model",
    "DataError": "data",
    "MNISTBatches": "data",
    "load_mnist": "data",
    "mnist_batches": "data",
    "Terms": "objectives",
    "bernoulli_nll": "objectives",
    "elbo_terms": "objectives",
    "iwae_bound": "objectives",
    "kl_wo_e": "objectives",
    "sgvb": "objectives",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'vae_hub' has no attribute {name!r}")
    return getattr(import_module(f"vae_hub.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return __all__

"""vae-hub: a variational autoencoder for MNIST, shipped the Hugging Face way."""

from .config import Config, resolve_device
from .data import DataError, MNISTBatches, load_mnist, mnist_batches
from .hub import WeightsError, bundled_weights
from .model import VAE, VAEOutput
from .objectives import REGULARIZERS, elbo_terms, iwae_bound, kl_wo_e, reconstruction, sgvb

__all__ = [
    "Config",
    "DataError",
    "MNISTBatches",
    "REGULARIZERS",
    "VAE",
    "VAEOutput",
    "WeightsError",
    "bundled_weights",
    "elbo_terms",
    "iwae_bound",
    "kl_wo_e",
    "load_mnist",
    "mnist_batches",
    "reconstruction",
    "resolve_device",
    "sgvb",
]
__version__ = "0.1.0"

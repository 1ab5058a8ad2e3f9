"""The VAE: an MLP encoder to (μ, log σ²) and an MLP decoder to Bernoulli logits, saved the Hugging Face way.

``PyTorchModelHubMixin`` does the saving, loading and pushing; the loading hook below adds what an untrusted folder
or repo needs: safetensors only (a pickle is refused with the reason), strict shapes, finite weights, and errors
that name the problem (see :mod:`vae_hub.hub`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from PIL import Image
from torch import Tensor, nn

from . import hub
from .config import ACTIVATIONS, LOGVAR_RANGE, Config, VAEConfig
from .hub import WeightsError
from .objectives import Terms, elbo_terms

__all__ = ["VAE", "VAEOutput", "WeightsError"]

# the modules of ACTIVATIONS' names, in their order
MODULES = dict(zip(ACTIVATIONS, (nn.GELU, nn.ReLU, nn.SiLU, nn.Tanh, nn.ELU, nn.LeakyReLU, nn.Softplus), strict=True))


class VAEOutput(NamedTuple):
    logits: Tensor  # (N, 784) Bernoulli logits of p(x|z)
    mu: Tensor  # (N, D)
    logvar: Tensor  # (N, D)
    z: Tensor  # (N, D) the reparameterized sample


def mlp(dims: list[int], act: type[nn.Module]) -> nn.Sequential:
    """Linear layers through ``dims`` with the activation between them (none after the last)."""
    layers = [m for d_in, d_out in zip(dims[:-1], dims[1:]) for m in (nn.Linear(d_in, d_out), act())]
    return nn.Sequential(*layers[:-1])


class VAE(nn.Module, PyTorchModelHubMixin, **hub.CARD_METADATA):
    """Variational autoencoder with a Gaussian encoder q(z|x) and a Bernoulli decoder p(x|z).

    ``forward`` is for training (it keeps the graph). ``encode``, ``decode``, ``reconstruct`` and ``sample`` are
    for use: no gradients, and they take images as tensors, numpy arrays or PIL images, (N, 784), (N, 28, 28),
    (N, 1, 28, 28) or one (28, 28) image; uint8 pixels are scaled by 1/255."""

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else VAEConfig()
        self.config = config.architecture() if isinstance(config, Config) else config  # config.json: the network
        self._hub_mixin_config = self.config  # what save_pretrained writes as config.json
        c, act = self.config, MODULES[self.config.act_fun]
        self.encoder = mlp([c.input_dim, *c.hidden_dims], act)  # 784→128→32→16→(μ, log σ²)
        self.decoder = mlp([c.latent_dim, *reversed(c.hidden_dims), c.input_dim], act)  # 2→4→16→32→128→784

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def pixels(self, images: Any) -> Tensor:
        """Images as this model's input: float (N, 784) in [0, 1] on its device, or a ValueError saying why not."""
        if isinstance(images, Image.Image):
            images = np.asarray(images.convert("L"))
        x = images if isinstance(images, Tensor) else torch.as_tensor(np.array(images))
        n = self.config.input_dim
        if x.numel() == n and x.dim() <= 3:
            x = x.reshape(1, n)  # one image
        if x.dim() < 2 or x[0].numel() != n:
            raise ValueError(f"expected images of shape (N, {n}), (N, 28, 28) or (N, 1, 28, 28); got {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float() / 255
        elif not (x.is_floating_point() or x.dtype == torch.bool):
            raise ValueError(f"pixels must be uint8 (0–255) or floats in [0, 1], got {x.dtype}")
        x = x.reshape(len(x), n).to(self.device, self.decoder[-1].weight.dtype)
        lo, hi = torch.aminmax(x) if x.numel() else (x.new_zeros(()), x.new_zeros(()))
        if not (0 <= lo and hi <= 1):
            raise ValueError(
                f"pixel values must lie in [0, 1], got {float(lo):.3g} to {float(hi):.3g}: divide floats in 0–255 "
                "by 255 (uint8 images are scaled for you)"
            )
        return x

    def encoder_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(μ, log σ²) of flat float pixels, with the graph. log σ² is clamped to a range far wider than training
        visits, so that extreme inputs cannot overflow σ² into inf."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def forward(self, x: Tensor, generator: torch.Generator | None = None, eps: Tensor | None = None) -> VAEOutput:
        """One pass for training: x float (N, 784) in [0, 1] → logits, μ, log σ² and z = μ + σ·ε, ε drawn from
        ``generator`` or given (``torch.compile`` traces no generator, so a compiled pass takes ε)."""
        mu, logvar = self.encoder_stats(x)
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        return VAEOutput(self.decoder(z), mu, logvar, z)

    @torch.no_grad()
    def encode(self, images: Any) -> tuple[Tensor, Tensor]:
        """q(z|x): (μ, log σ²), each (N, latent_dim)."""
        return self.encoder_stats(self.pixels(images))

    @torch.no_grad()
    def decode(self, z: Any) -> Tensor:
        """Pixel probabilities of p(x|z), shape (N, 1, 28, 28)."""
        z = torch.as_tensor(z, dtype=self.decoder[0].weight.dtype, device=self.device)
        z = z.reshape(1, -1) if z.dim() == 1 else z
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (N, {self.latent_dim}): this model's latent is {self.latent_dim}-D")
        return torch.sigmoid(self.decoder(z)).reshape(-1, 1, 28, 28)

    @torch.no_grad()
    def reconstruct(self, images: Any) -> Tensor:
        """Decode the posterior mean μ: deterministic, shape (N, 1, 28, 28)."""
        return self.decode(self.encode(images)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images from the prior: z ~ N(0, I), decoded to probabilities (n, 1, 28, 28)."""
        device = generator.device if generator is not None else self.device
        return self.decode(torch.randn(n, self.latent_dim, generator=generator, device=device))

    def loss(self, images: Any, regularizer: str = "kl_wo_e", generator: torch.Generator | None = None) -> Terms:
        """Per-image nELBO terms of ``images`` with one reparameterized sample (see :mod:`vae_hub.objectives`)."""
        x = self.pixels(images)
        out = self(x, generator)
        return elbo_terms(out.logits, x, out.mu, out.logvar, out.z, regularizer)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> VAE:
        """Load from a ``save_pretrained`` folder or a Hub repo id (``revision``, ``cache_dir``, ``token``,
        ``local_files_only``, ``force_download``, ``map_location`` as the mixin takes them). Safetensors only,
        strict; anything malformed, missing or unreachable raises :class:`WeightsError` naming the problem, and an
        unknown keyword (``local_file_only=True``) is a TypeError, never a silent trip to the network."""
        source = os.fspath(pretrained_model_name_or_path)
        offline = hub.check_source(source, kwargs)
        try:
            return super().from_pretrained(source, **kwargs)
        except (WeightsError, TypeError):
            raise
        except Exception as e:  # the mixin's own reading and downloading: JSON, HTTP, the cache
            raise WeightsError(hub.explain(source, e, offline)) from e

    @classmethod
    def _from_pretrained(
        cls, *, model_id: str, config: Any = None, map_location: str | torch.device = "cpu", **download: Any
    ) -> VAE:
        """The mixin's hook; ``download``: revision, cache_dir, token, force_download and local_files_only."""
        if config is None:
            raise WeightsError(f"{model_id}: no config.json found; it must sit beside model.safetensors")
        try:
            arch = VAEConfig.from_dict(dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config)
        except (ValueError, TypeError) as e:
            raise WeightsError(f"{model_id}: invalid config.json: {hub.first_line(e)}") from e
        with torch.device("meta"):  # the expected shapes without allocating (a huge config is refused first)
            expected = {k: v.shape for k, v in cls(arch).state_dict().items()}
        state = hub.load_state(hub.weights_file(model_id, **download), expected, model_id)
        model = cls(arch)
        model.load_state_dict(state, strict=True)
        return model.to(map_location).eval()

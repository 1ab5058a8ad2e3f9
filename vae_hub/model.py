"""The VAE network: an MLP encoder to (μ, log σ²), an MLP decoder to Bernoulli logits.

The layout is the original design's: the encoder's last layer is linear and its outputs are split in half into
μ and log σ², so ``Config()`` (hidden_dims [128, 32, 16, 4]) has a 2-D latent:

    encoder  784 → 128 → 32 → 16 → 4 = (μ ∈ R², log σ² ∈ R²)
    decoder    2 → 4 → 16 → 32 → 128 → 784 Bernoulli logits

with the activation after every hidden layer. Loading (Hub, safetensors, strict checks) lives in :mod:`vae_hub.hub`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin
from safetensors.torch import save
from torch import Tensor, nn

from . import hub
from .config import Config
from .data import to_unit
from .files import CONFIG_NAME, WEIGHTS_NAME, atomic_write_bytes

# log σ² is clamped to a range far wider than training ever visits (σ from ~1e-4 to ~150), so that
# extreme or adversarial inputs cannot overflow exp(log σ²) into inf or NaN.
LOGVAR_MIN, LOGVAR_MAX = -18.0, 10.0


class VAEOutput(NamedTuple):
    logits: Tensor  # (N, 784) Bernoulli logits of p(x|z)
    mu: Tensor  # (N, D)
    logvar: Tensor  # (N, D)
    z: Tensor  # (N, D) the reparameterized sample


def mlp(dims: list[int], act: type[nn.Module]) -> nn.Sequential:
    """Linear layers through ``dims`` with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out), act()]
    return nn.Sequential(*layers[:-1])


class VAE(nn.Module, PyTorchModelHubMixin, **hub.MIXIN_METADATA):
    """Variational autoencoder with a Gaussian encoder q(z|x) and a Bernoulli decoder p(x|z)."""

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else Config()
        c = self.config
        self.encoder = mlp([c.input_dim, *c.hidden_dims], c.activation)  # 784→128→32→16→(μ, log σ²)
        self.decoder = mlp([c.latent_dim, *reversed(c.hidden_dims), c.input_dim], c.activation)  # 2→4→…→784

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _flatten(self, x: Tensor) -> Tensor:
        """Accept (N, 784), (N, 28, 28) or (N, 1, 28, 28); uint8 pixels (``load_mnist``) are scaled by 1/255."""
        if x.dim() < 2 or x[0].numel() != self.config.input_dim:
            raise ValueError(
                f"expected images of shape (N, {self.config.input_dim}), (N, 28, 28) or (N, 1, 28, 28); "
                f"got {tuple(x.shape)}"
            )
        return to_unit(x.reshape(x.shape[0], self.config.input_dim)).to(self.decoder[-1].weight.dtype)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x): returns (μ, log σ²), each (N, latent_dim)."""
        mu, logvar = self.encoder(self._flatten(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z = μ + σ·ε with ε ~ N(0, I), differentiable in μ and σ."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: Tensor) -> Tensor:
        """Bernoulli logits of p(x|z), shape (N, 784)."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """Pixel probabilities in [0, 1], shape (N, 1, 28, 28)."""
        return torch.sigmoid(self.decode_logits(z)).reshape(-1, 1, 28, 28)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        return VAEOutput(self.decode_logits(z), mu, logvar, z)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Deterministic reconstruction: decode the posterior mean μ. Shape (N, 1, 28, 28)."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw n images from the prior: z ~ N(0, I), decoded to probabilities (n, 1, 28, 28)."""
        device = generator.device if generator is not None else self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device).to(self.device)
        return self.decode(z)

    def loss(self, x: Tensor, regularizer: str | None = None, generator: torch.Generator | None = None):
        """Per-image nELBO terms (see :mod:`vae_hub.objectives`), with the config's regularizer by default."""
        from .objectives import elbo_terms

        out = self(x, generator)
        reg = regularizer or self.config.regularizer
        return elbo_terms(out.logits, self._flatten(x), out.mu, out.logvar, out.z, reg)

    # --- Saving and loading (the mixin's documented extension points) ---
    def _save_pretrained(self, save_directory: Path) -> None:
        """``model.safetensors`` and ``config.json``: the architecture only (training settings live elsewhere)."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write_bytes(save_directory / WEIGHTS_NAME, save(state))  # never half a file, even on a full disk
        hub.write_json(save_directory / CONFIG_NAME, self.config.architecture())

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        """A minimal card with the project's metadata; ``training.card`` writes the full one for trained models."""
        return ModelCard.from_template(
            ModelCardData(**hub.CARD_METADATA), template_str=hub.CARD_TEMPLATE, **hub.CARD_LINKS, **kwargs
        )

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        force_download: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
    ) -> VAE:
        """Load from a ``save_pretrained`` folder or a Hub repo id, strictly and only from safetensors.

        Unknown keyword arguments are a ``TypeError`` (a typo such as ``local_file_only=True`` must not reach the
        network). Anything malformed, missing or unreachable raises :class:`vae_hub.WeightsError` naming the problem.
        """
        config, state = hub.load_files(
            pretrained_model_name_or_path,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
        )
        hub.check_state(state, cls, config, str(pretrained_model_name_or_path))
        model = cls(config)
        model.load_state_dict(state, strict=True)
        return model.to(map_location).eval()

"""The VAE network: an MLP encoder to (μ, log σ²), a mirrored MLP decoder to Bernoulli logits, Hub-ready."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import torch
from huggingface_hub import HfApi, PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from .config import Config

REPO_URL = "https://github.com/vae-hub/vae-hub"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_NAMES = ("pytorch_model.bin", "model.bin", "model.pt", "model.pth", "model.ckpt")

# log σ² is clamped to a range far wider than training ever visits (σ from ~1e-4 to ~150), so that
# extreme or adversarial inputs cannot overflow exp(log σ²) into inf or NaN.
LOGVAR_MIN, LOGVAR_MAX = -18.0, 10.0


class VAEOutput(NamedTuple):
    logits: Tensor  # (N, 784) Bernoulli logits of p(x|z)
    mu: Tensor  # (N, D)
    logvar: Tensor  # (N, D)
    z: Tensor  # (N, D) the reparameterized sample


class WeightsError(ValueError):
    """A weights directory or Hub repo that cannot be loaded safely; the message names the problem."""


def _mlp(dims: list[int], act: type[nn.Module], last_act: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if last_act or i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class VAE(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="vae-hub",
    tags=["vae", "variational-autoencoder", "mnist", "image-generation", "pytorch"],
    license="cc-by-sa-3.0",
    repo_url=REPO_URL,
    paper_url="https://arxiv.org/abs/1312.6114",
    pipeline_tag="image-to-image",
):
    """Variational autoencoder with a Gaussian encoder q(z|x) and a Bernoulli decoder p(x|z)."""

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else Config()
        self._hub_mixin_config = self.config  # what save_pretrained writes to config.json
        c, act = self.config, self.config.activation
        enc_dims = [c.input_dim, *c.hidden_dims[:-1]]
        self.encoder = _mlp(enc_dims, act, last_act=True)  # 784→128→32→16
        self.to_stats = nn.Linear(enc_dims[-1], 2 * c.latent_dim)  # 16→(μ, log σ²)
        self.decoder = _mlp([c.latent_dim, *reversed(enc_dims)], act, last_act=False)  # 4→16→32→128→784

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _flatten(self, x: Tensor) -> Tensor:
        """Accept (N, 784), (N, 28, 28) or (N, 1, 28, 28)."""
        if x.dim() < 2 or x[0].numel() != self.config.input_dim:
            raise ValueError(
                f"expected images of shape (N, {self.config.input_dim}), (N, 28, 28) or (N, 1, 28, 28); "
                f"got {tuple(x.shape)}"
            )
        return x.reshape(x.shape[0], self.config.input_dim).to(self.to_stats.weight.dtype)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z|x): returns (μ, log σ²), each (N, latent_dim)."""
        mu, logvar = self.to_stats(self.encoder(self._flatten(x))).chunk(2, dim=-1)
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

    # --- Loading: our own, strict and pickle-free (the mixin's default falls back to pickle, non-strict) ---
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
        **_ignored,
    ) -> VAE:
        """Load from a ``save_pretrained`` directory or a Hub repo id. Only safetensors is ever read.

        Only ``config.json`` and ``model.safetensors`` are ever downloaded. Raises :class:`WeightsError` with a
        message naming the problem for anything malformed, missing or unreachable.
        """
        source = str(pretrained_model_name_or_path)
        is_dir = os.path.isdir(source)
        if not is_dir and os.path.isfile(source):
            raise WeightsError(f"{source} is a file: pass the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}")
        # Hub ids look like "user/name"; anything else that is not a directory is a wrong local path.
        if not is_dir and (os.path.exists(source) or source.startswith((".", "/", "~")) or source.count("/") > 1):
            raise WeightsError(f"no such model directory: {source}")

        def fetch(name: str) -> str | None:
            if is_dir:
                path = os.path.join(source, name)
                return path if os.path.isfile(path) else None
            try:
                return hf_hub_download(
                    source,
                    name,
                    revision=revision,
                    cache_dir=cache_dir,
                    local_files_only=local_files_only,
                    force_download=force_download,
                    token=token,
                )
            except RemoteEntryNotFoundError:
                return None  # the repo exists but has no such file
            except LocalEntryNotFoundError as e:  # a subclass of EntryNotFoundError: not "the repo lacks it"
                cause = e.__cause__ or e
                why = (
                    "local_files_only=True"
                    if local_files_only
                    else f"the Hub could not be reached: {_first_line(cause)}"
                )
                raise WeightsError(f"{source}: {name} is not in the local cache ({why})") from e
            except RevisionNotFoundError as e:
                raise WeightsError(f"{source}: revision {revision or 'main'!r} does not exist on the Hub") from e
            except RepositoryNotFoundError as e:  # also a private or gated repo without a valid token
                raise WeightsError(
                    f"{source} is neither a local folder nor a Hub repo you can access "
                    "(if it is private, log in with `hf auth login` or pass token=)"
                ) from e
            except HfHubHTTPError as e:
                raise WeightsError(f"{source}: the Hub refused {name}: {_first_line(e)}") from e
            except HFValidationError as e:
                raise WeightsError(f"{source} is neither a local folder nor a valid Hub repo id ({e})") from e

        config_file, weights_file = fetch(CONFIG_NAME), fetch(WEIGHTS_NAME)
        if weights_file is None:
            raise WeightsError(f"{source}: no {WEIGHTS_NAME} found.{_pickle_hint(source, is_dir, revision, token)}")
        if config_file is None:
            raise WeightsError(f"{source}: no {CONFIG_NAME} found; it must sit beside {WEIGHTS_NAME}")
        config = _read_config(config_file, source)
        try:
            state = load_file(weights_file, device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{source}: {WEIGHTS_NAME} is corrupt or truncated ({e})") from e
        # The expected shapes come from a model on the meta device, so that a config.json with huge dims is
        # refused for not matching the weights before any memory is allocated for it.
        with torch.device("meta"):
            expected = {name: t.shape for name, t in cls(config).state_dict().items()}
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise WeightsError(
                f"{source}: {WEIGHTS_NAME} does not match {CONFIG_NAME}: missing tensors {missing}, "
                f"unexpected tensors {unexpected}"
            )
        for name, tensor in state.items():
            if tensor.shape != expected[name]:
                raise WeightsError(
                    f"{source}: tensor {name!r} has shape {tuple(tensor.shape)} but {CONFIG_NAME} implies "
                    f"{tuple(expected[name])}"
                )
            if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
                raise WeightsError(f"{source}: tensor {name!r} is not finite floating point")
        model = cls(config)
        model.load_state_dict(state, strict=True)
        return model.to(map_location).eval()


def _first_line(error: BaseException) -> str:
    return next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)


def _read_config(path: str, source: str) -> Config:
    """Parse config.json strictly: valid JSON, known keys, JSON types matching Config, a known activation."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise WeightsError(f"{source}: {CONFIG_NAME} is not valid JSON ({e})") from e
    try:
        return Config.from_dict(data)
    except (ValueError, TypeError) as e:
        raise WeightsError(f"{source}: invalid {CONFIG_NAME}: {e}") from e


def _pickle_hint(source: str, is_dir: bool, revision: str | None, token: str | bool | None) -> str:
    """Say so when the weights exist only as a pickle. Hub files are only probed (HEAD), never downloaded."""
    if is_dir:
        pickles = [n for n in PICKLE_NAMES if os.path.isfile(os.path.join(source, n))]
    else:
        api = HfApi(token=token)
        pickles = [n for n in PICKLE_NAMES if api.file_exists(source, n, revision=revision)]
    if not pickles:
        return ""
    return (
        f" It holds {pickles[0]}, a pickle file, which is refused: unpickling can run arbitrary code. "
        "Convert it to safetensors with a tool you trust."
    )


# The mixin's class keywords have no `datasets`; set it on the card metadata it generates from.
VAE._hub_mixin_info.model_card_data.datasets = ["mnist"]

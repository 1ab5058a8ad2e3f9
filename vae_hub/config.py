"""The two configurations, plain dataclasses with the help text beside each field: ``VAEConfig``, the network, and
``Config``, the original design's single entry point for training (``Trainer(Config()).train_with_sgvb(loader)``).
This module imports no torch, so that the command-line tools answer ``--help`` at once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

ACTIVATIONS = ("gelu", "relu", "silu", "tanh", "elu", "leaky_relu", "softplus")
REGULARIZERS = ("sgvb", "kl_wo_e")
LR_SCHEDULES = ("constant", "cosine")
# Far above any MNIST model, so that a hostile config.json is refused before anything is allocated.
MAX_LAYERS, MAX_WIDTH = 32, 1 << 16
LOGVAR_RANGE = (-18.0, 10.0)  # log σ² is clamped to this (see VAE.encode); an initial value must lie inside


def _help(text: str, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    return dataclasses.field(default=default, metadata={"help": text}, **kwargs)


def _kind(name: str, value: Any, kind: str) -> None:
    """Refuse a value of the wrong JSON kind (a bool is no number here, 128.0 is no width)."""
    checks = {
        "int": lambda: type(value) is int,
        "float": lambda: type(value) is float and math.isfinite(value) or type(value) is int and abs(value) < 1e300,
        "str": lambda: isinstance(value, str) and len(value) <= 100,
        "bool": lambda: type(value) is bool,
        "list[int]": lambda: isinstance(value, list) and all(type(v) is int for v in value),
    }
    if not checks[kind]():
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise ValueError(f"{name!r} must be of type {kind}{' (finite)' if kind == 'float' else ''}, got {shown}")


@dataclasses.dataclass
class VAEConfig:
    """The network (an MLP encoder to μ, log σ² and its mirror image): ``model.config``, what ``config.json`` holds."""

    input_dim: int = _help("pixels per image: 28×28 MNIST", 784)
    hidden_dims: list[int] = _help(
        "encoder widths; the last holds μ and log σ² together, so the latent size is half of it "
        "(128 32 16 4: the original 2-D network; 128 32 16 8: its 4-D sibling)",
        default_factory=lambda: [128, 32, 16, 4],
    )
    act_fun: str = _help(f"activation after every hidden layer: {', '.join(ACTIVATIONS)}", "gelu")

    def __post_init__(self) -> None:
        if isinstance(self.act_fun, type):  # the original design's nn.GELU → "gelu", without importing torch here
            self.act_fun = {"leakyrelu": "leaky_relu"}.get(self.act_fun.__name__.lower(), self.act_fun.__name__.lower())
        _kind("act_fun", self.act_fun, "str")
        if self.act_fun.lower() not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.act_fun!r}; choose one of {list(ACTIVATIONS)}")
        self.act_fun = self.act_fun.lower()
        self.hidden_dims = list(self.hidden_dims) if isinstance(self.hidden_dims, tuple) else self.hidden_dims
        _kind("input_dim", self.input_dim, "int")
        _kind("hidden_dims", self.hidden_dims, "list[int]")
        if not 1 <= len(self.hidden_dims) <= MAX_LAYERS:
            raise ValueError(f"hidden_dims must have 1 to {MAX_LAYERS} entries, got {len(self.hidden_dims)}")
        if max(self.input_dim, *self.hidden_dims) > MAX_WIDTH:
            raise ValueError(f"layer widths are capped at {MAX_WIDTH:,}")
        if min(self.input_dim, *self.hidden_dims) <= 0:
            raise ValueError(f"dims must be positive: input_dim={self.input_dim}, hidden_dims={self.hidden_dims}")
        if self.hidden_dims[-1] % 2:
            raise ValueError(
                f"the last hidden size holds μ and log σ² together, so it must be even; got {self.hidden_dims[-1]} "
                "(e.g. 4 for a 2-D latent, 8 for a 4-D one)"
            )

    @property
    def latent_dim(self) -> int:
        return self.hidden_dims[-1] // 2

    @classmethod
    def from_dict(cls, data: Any) -> VAEConfig:
        """Parse a ``config.json`` object strictly: known keys only, each of its JSON kind."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a JSON object, got {type(data).__name__}")
        if unknown := sorted(set(data) - {f.name for f in dataclasses.fields(cls)}):
            raise ValueError(f"unknown keys {unknown[:5]}; config.json holds only input_dim, hidden_dims, act_fun")
        return cls(**data)


@dataclasses.dataclass
class Config(VAEConfig):
    """The original design's configuration, with the training settings this project added; ``architecture()`` is its
    network. The defaults are the original plain loop; :func:`training.recipe` gives the bundled models' settings."""

    batch_size: int = _help("images per optimizer step (per process under torchrun)", 256)
    epochs: int = _help("passes over the training images", 50)
    lr: float = _help("peak learning rate of Adam", 1e-3)
    device: str = _help("auto (CUDA, then MPS, else the CPU), cpu, cuda, cuda:N or mps", "auto")
    regularizer: str = _help("the KL estimator: sgvb (sampled, estimator A) or kl_wo_e (closed form, B)", "kl_wo_e")
    seed: int = _help("seed of the initial weights, the shuffling, the binarization and the noise", 0)
    lr_schedule: str = _help("constant, or cosine: linear warm-up over warmup_epochs, then decay to min_lr", "constant")
    warmup_epochs: float = _help("epochs of linear learning-rate warm-up (cosine schedule)", 0.0)
    min_lr: float = _help("the cosine schedule's final learning rate", 0.0)
    init_output_bias: bool = _help("start the decoder's output bias at the logit of the mean training image", False)
    init_logvar: float | None = _help("initial bias of the encoder's log σ² outputs (None: PyTorch's default)", None)
    kl_warmup_epochs: float = _help("epochs over which the KL weight rises linearly from 0 to 1 (0: off)", 0.0)
    binarize: bool = _help("dynamic binarization: every epoch a fresh Bernoulli draw of each training image", False)

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in dataclasses.fields(self)[len(dataclasses.fields(VAEConfig)) :]:
            if not (f.name == "init_logvar" and self.init_logvar is None):
                _kind(f.name, getattr(self, f.name), str(f.type).replace(" | None", ""))
        lo, hi = LOGVAR_RANGE
        checks = {
            "batch_size": (self.batch_size >= 1, "at least 1"),
            "epochs": (self.epochs >= 1, "at least 1"),
            "lr": (self.lr > 0, "positive"),
            "min_lr": (0 <= self.min_lr <= self.lr, "between 0 and lr"),
            "seed": (self.seed >= 0, "≥ 0"),
            "regularizer": (self.regularizer in REGULARIZERS, f"one of {list(REGULARIZERS)}"),
            "lr_schedule": (self.lr_schedule in LR_SCHEDULES, f"one of {list(LR_SCHEDULES)}"),
            "warmup_epochs": (self.warmup_epochs >= 0, "≥ 0"),
            "kl_warmup_epochs": (self.kl_warmup_epochs >= 0, "≥ 0"),
            "init_logvar": (self.init_logvar is None or lo <= self.init_logvar <= hi, f"in {[lo, hi]}"),
        }
        for name, (ok, requirement) in checks.items():
            if not ok:
                raise ValueError(f"{name} must be {requirement}, got {getattr(self, name)!r}")
        for name in ("warmup_epochs", "kl_warmup_epochs"):
            if getattr(self, name) > self.epochs:
                run = f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
                raise ValueError(
                    f"{name} ({getattr(self, name):g}) is longer than the run ({run}), which would "
                    f"end before the warm-up does: lower {name} or train for more epochs"
                )

    def architecture(self) -> VAEConfig:
        return VAEConfig(self.input_dim, list(self.hidden_dims), self.act_fun)

    def training_args(self) -> dict[str, Any]:
        """What ``training_args.json`` holds: every field that is not the architecture."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[len(dataclasses.fields(VAEConfig)) :]}

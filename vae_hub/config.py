"""The model and training configuration.

``Config`` keeps the original design's fields in one dataclass. What it saves is split the diffusers way:
``config.json`` holds only the architecture (what rebuilds the network), and the training settings go to
``training_args.json`` beside the weights.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# Activations are stored in config.json by name, never pickled. The class (e.g. ``nn.GELU``) is still
# accepted for compatibility with the original design, and normalised to its name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
}

LR_SCHEDULES = ("constant", "cosine")


def activation_name(act: str | type[nn.Module]) -> str:
    """Normalise an activation given as a name or an ``nn.Module`` class to its registered name."""
    if isinstance(act, str):
        name = act.lower()
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
        return name
    for name, cls in ACTIVATIONS.items():
        if act is cls:
            return name
    raise ValueError(f"unsupported activation {act!r}; choose one of {sorted(ACTIVATIONS)}")


# The JSON types of config.json's fields, by their annotations in Config (a bool is not an int here).
_JSON_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _json_type_ok(value: object, annotation: str) -> bool:
    if annotation == "list[int]":
        return isinstance(value, list) and all(type(v) is int for v in value)
    if annotation not in _JSON_TYPES:
        return True  # a field of another type: __post_init__ validates it
    if isinstance(value, bool):
        return annotation == "bool"
    return isinstance(value, _JSON_TYPES[annotation])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA if available, then Apple MPS, else the CPU."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# Caps far above any MNIST model, so that a hostile config.json is refused at once instead of allocating for
# minutes (a 100,000-layer or 10**400-wide network).
MAX_LAYERS, MAX_WIDTH = 32, 1 << 16
ARCHITECTURE_FIELDS = ("input_dim", "hidden_dims", "act_fun", "regularizer")


@dataclass
class Config:
    """Architecture and training hyper-parameters, with the original design's defaults.

    ``hidden_dims`` lists the encoder's widths. Its last layer is linear and holds μ and log σ² together, so
    the latent size is ``hidden_dims[-1] // 2``. The default is the original network, a 2-D latent:
    encoder 784→128→32→16→4 (split 2 + 2), decoder 2→4→16→32→128→784 (211,200 parameters).
    ``hidden_dims=[128, 32, 16, 8]`` is the same family with a 4-D latent.
    """

    input_dim: int = 784
    hidden_dims: list[int] = field(default_factory=lambda: [128, 32, 16, 4])
    act_fun: str = "gelu"
    batch_size: int = 256
    epochs: int = 50
    lr: float = 1e-3
    device: str = "auto"
    # Additions for training (not architecture):
    regularizer: str = "kl_wo_e"
    seed: int = 0
    # Learning-rate schedule (training only; the defaults are the original constant 1e-3):
    # "constant", or "cosine" = linear warm-up over ``warmup_epochs`` then cosine decay to ``min_lr``.
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    # Initialise the decoder's output bias to the logit of the mean training image (a data-dependent start
    # that spares the first epoch learning the average digit); the other weights keep PyTorch's default init.
    init_output_bias: bool = False
    # If set, the initial bias of the log σ² head: a small initial posterior variance (e.g. -4, σ² ≈ 0.02) lets
    # the decoder learn to use every latent dimension before the KL term can switch one off.
    init_logvar: float | None = None
    # KL warm-up: the KL term's weight rises linearly from 0 to 1 over this many epochs (0 = off). It lets the
    # decoder learn to use every latent dimension before the KL can switch one off (the 4-D family needs it).
    kl_warmup_epochs: float = 0.0

    def __post_init__(self) -> None:
        self.act_fun = activation_name(self.act_fun)
        try:  # integers only (numpy integers too); 128.0 or "128" is a mistake, not a width
            self.input_dim = operator.index(self.input_dim)
            self.hidden_dims = [operator.index(d) for d in self.hidden_dims]
        except TypeError:
            raise ValueError(
                f"dims must be integers: input_dim={self.input_dim!r}, hidden_dims={self.hidden_dims!r}"[:200]
            ) from None
        if not 1 <= len(self.hidden_dims) <= MAX_LAYERS:
            raise ValueError(f"hidden_dims must have 1 to {MAX_LAYERS} entries, got {len(self.hidden_dims)}")
        if self.input_dim <= 0 or any(d <= 0 for d in self.hidden_dims):
            raise ValueError(f"dims must be positive: input_dim={self.input_dim}, hidden_dims={self.hidden_dims}")
        if max(self.input_dim, *self.hidden_dims) > MAX_WIDTH:
            raise ValueError(
                f"layer widths are capped at {MAX_WIDTH:,}; got input_dim={self.input_dim}, "
                f"hidden_dims={self.hidden_dims}"
            )
        if self.hidden_dims[-1] % 2:
            raise ValueError(
                f"the last hidden size holds μ and log σ² together, so it must be even; got {self.hidden_dims[-1]} "
                f"(hidden_dims={self.hidden_dims}); e.g. 4 for a 2-D latent, 8 for a 4-D one"
            )
        if self.kl_warmup_epochs < 0:
            raise ValueError(f"kl_warmup_epochs must be ≥ 0, got {self.kl_warmup_epochs}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose one of {list(LR_SCHEDULES)}")
        if isinstance(self.device, torch.device):
            self.device = str(self.device)

    @property
    def latent_dim(self) -> int:
        """The size of z: the last hidden entry holds μ and log σ², half each."""
        return self.hidden_dims[-1] // 2

    @property
    def activation(self) -> type[nn.Module]:
        return ACTIVATIONS[self.act_fun]

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def architecture(self) -> dict[str, Any]:
        """What ``config.json`` holds: the fields that rebuild the network, and the regularizer as a label."""
        return {k: v for k, v in self.to_dict().items() if k in ARCHITECTURE_FIELDS}

    def training_args(self) -> dict[str, Any]:
        """What ``training_args.json`` holds: every field that is not architecture."""
        return {k: v for k, v in self.to_dict().items() if k not in ARCHITECTURE_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Build from a ``config.json`` dict, rejecting unknown keys with a message that names them."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a JSON object, got {type(data).__name__}")
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"config has unknown keys {unknown}; expected a subset of {sorted(fields)}")
        for name, value in data.items():
            if not _json_type_ok(value, fields[name]):
                raise ValueError(f"{name!r} must be of type {fields[name]}, got {value!r}")
        return cls(**data)

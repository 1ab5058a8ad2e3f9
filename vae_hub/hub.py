"""Loading weights from a ``save_pretrained`` folder or the Hugging Face Hub: strict, safetensors only, no pickle.

Also the one place for the Hub metadata (tags, license, library name) that the network's mixin and the model
cards share, and for the bundled weights' location.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError

try:  # the HTTP client under huggingface_hub: httpx2 since 2.0, httpx before
    from httpx2 import TransportError
except ImportError:  # pragma: no cover
    from httpx import TransportError
from safetensors.torch import load_file
from torch import Tensor, nn

from .config import Config
from .files import CONFIG_NAME, PICKLE_NAMES, WEIGHTS_NAME, atomic_write_text

MAX_CONFIG_BYTES = 64 * 1024  # a real config.json is ~150 bytes; a larger one is refused unread
REPO_URL = "https://github.com/vae-hub/vae-hub"
PAPER_URL = "https://arxiv.org/abs/1312.6114"

# The Hub metadata, once: the mixin takes MIXIN_METADATA as class keywords, the cards use CARD_METADATA.
TAGS = ["vae", "variational-autoencoder", "mnist", "image-generation", "pytorch", "vae-hub"]
MIXIN_METADATA: dict[str, Any] = {
    "library_name": "vae-hub",
    "tags": TAGS,
    "license": "cc-by-sa-3.0",
    "pipeline_tag": "image-to-image",
    "repo_url": REPO_URL,
    "paper_url": PAPER_URL,
}
CARD_LINKS = {"repo_url": REPO_URL, "paper_url": PAPER_URL}
CARD_METADATA: dict[str, Any] = {
    **{k: v for k, v in MIXIN_METADATA.items() if k not in CARD_LINKS},
    "datasets": ["mnist"],
}
CARD_TEMPLATE = """---
{{ card_data }}
---

# VAE on MNIST

A variational autoencoder saved with [vae-hub]({{ repo_url }}) ([paper]({{ paper_url }})).
Load it with `vae_hub.VAE.from_pretrained(...)`.
"""

# The bundled models, the original 2-D pair first: each name is its folder under the repository's weights/.
BUNDLED = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class WeightsError(ValueError):
    """A weights folder or Hub repo that cannot be loaded safely; the message names the problem."""


def bundled_weights(name: str = "sgvb") -> Path:
    """The folder of a bundled model (``"sgvb"``, ``"kl_wo_e"``, ``"z4/sgvb"``, ``"z4/kl_wo_e"``), from any working
    directory. The weights ship with the repository (a checkout or an editable install), not inside the wheel."""
    if name not in BUNDLED:
        raise WeightsError(f"unknown bundled model {name!r}; choose one of {list(BUNDLED)}")
    folder = WEIGHTS_DIR / name
    if not (folder / WEIGHTS_NAME).is_file():
        raise WeightsError(f"the bundled weights are not at {folder}: they ship with a checkout of the repository")
    return folder


def write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_config(path: str | os.PathLike, source: str) -> Config:
    """Parse config.json strictly: small, valid JSON, known keys, JSON types matching Config, sane sizes."""
    size = os.path.getsize(path)
    if size > MAX_CONFIG_BYTES:
        raise WeightsError(f"{source}: {CONFIG_NAME} is {size:,} bytes; a config is at most {MAX_CONFIG_BYTES:,}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except RecursionError:
        raise WeightsError(f"{source}: {CONFIG_NAME} is nested too deeply to be a config") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise WeightsError(f"{source}: {CONFIG_NAME} is not valid JSON ({e})") from e
    try:
        return Config.from_dict(data)
    except (ValueError, TypeError, OverflowError) as e:
        raise WeightsError(f"{source}: invalid {CONFIG_NAME}: {_short(e)}") from e


def load_files(
    source: str | os.PathLike,
    *,
    revision: str | None,
    cache_dir: str | os.PathLike | None,
    local_files_only: bool,
    force_download: bool,
    token: str | bool | None,
) -> tuple[Config, dict[str, Tensor]]:
    """Find ``config.json`` and ``model.safetensors`` (a local folder, else the Hub) and read them."""
    source = os.fspath(source)
    if os.path.isdir(source):
        config_file, weights_file = (_local(source, n) for n in (CONFIG_NAME, WEIGHTS_NAME))
        pickle_hint = _local_pickles(source)
    else:
        config_file, weights_file, pickle_hint = _from_hub(
            source, revision, cache_dir, local_files_only, force_download, token
        )
    if weights_file is None:
        raise WeightsError(f"{source}: no {WEIGHTS_NAME} found.{pickle_hint()}")
    if config_file is None:
        raise WeightsError(f"{source}: no {CONFIG_NAME} found; it must sit beside {WEIGHTS_NAME}")
    config = read_config(config_file, source)
    try:
        state = load_file(weights_file, device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{source}: {WEIGHTS_NAME} is corrupt or truncated ({e})") from e
    return config, state


def check_state(state: dict[str, Tensor], cls: type[nn.Module], config: Config, source: str) -> None:
    """Every tensor the config implies, with its shape, finite floating point, and nothing else."""
    # The expected shapes come from a model on the meta device, so that a config.json with huge dims is
    # refused for not matching the weights before any memory is allocated for it.
    with torch.device("meta"):
        expected = {name: t.shape for name, t in cls(config).state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{source}: {WEIGHTS_NAME} does not match {CONFIG_NAME}: missing tensors {missing[:8]}, "
            f"unexpected tensors {unexpected[:8]}"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name]:
            raise WeightsError(
                f"{source}: tensor {name!r} has shape {tuple(tensor.shape)} but {CONFIG_NAME} implies "
                f"{tuple(expected[name])}"
            )
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise WeightsError(f"{source}: tensor {name!r} is not finite floating point")


def _local(folder: str, name: str) -> str | None:
    path = os.path.join(folder, name)
    return path if os.path.isfile(path) else None


def _local_pickles(folder: str):
    return lambda: _pickle_message([n for n in PICKLE_NAMES if os.path.isfile(os.path.join(folder, n))])


def _pickle_message(pickles: list[str]) -> str:
    if not pickles:
        return ""
    return (
        f" It holds {pickles[0]}, a pickle file, which is refused: unpickling can run arbitrary code. "
        "Convert it to safetensors with a tool you trust."
    )


def _not_here(source: str) -> str:
    """How a name that is no local folder was read: the path it resolved to, against which folder."""
    return f"{os.path.abspath(source)} does not exist; relative paths are resolved against {os.getcwd()}"


def _from_hub(source, revision, cache_dir, local_files_only, force_download, token):
    if os.path.isfile(source):
        raise WeightsError(f"{source} is a file: pass the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    # A Hub id is "name" or "user/name"; anything else (./x, /x, ~/x, a/b/c) can only be a wrong local path.
    if source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source:
        raise WeightsError(f"no such model folder: {source} ({_not_here(source)})")
    where = f"{source!r} is not a local folder ({_not_here(source)}) and, read as a Hub repo id,"
    offline: str | None = None
    if not local_files_only:
        # One quick request without retries first: hf_hub_download retries a dead network for ~30 s. When the Hub
        # cannot be reached, only the local cache is used.
        try:
            HfApi(token=token).model_info(source, revision=revision, timeout=10)
        except RepositoryNotFoundError as e:  # also a private or gated repo without a valid token
            raise WeightsError(
                f"{where} it does not exist or is private (log in with `hf auth login` or pass token=)"
            ) from e
        except RevisionNotFoundError as e:
            raise WeightsError(f"{source}: revision {revision or 'main'!r} does not exist on the Hub") from e
        except HFValidationError as e:
            raise WeightsError(f"{where} it is not a valid repo id ({_short(e)})") from e
        except HfHubHTTPError as e:
            if e.response is not None and e.response.status_code == 404:
                raise WeightsError(f"{where} it does not exist") from e
            raise WeightsError(f"{source}: the Hub refused the request: {_short(e)}") from e
        except (TransportError, OSError) as e:  # no network, DNS failure, refused connection, timeout
            offline = _short(e)
    cache_only = local_files_only or offline is not None

    def fetch(name: str) -> str | None:
        try:
            return hf_hub_download(
                source,
                name,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=cache_only,
                force_download=force_download,
                token=token,
            )
        except RemoteEntryNotFoundError:
            return None  # the repo exists but has no such file
        except LocalEntryNotFoundError as e:  # a subclass of EntryNotFoundError: not "the repo lacks it"
            why = f"the Hub could not be reached: {offline}" if offline else "local_files_only=True"
            raise WeightsError(f"{where} {name} is not in the local cache ({why})") from e
        except HFValidationError as e:
            raise WeightsError(f"{where} it is not a valid repo id ({_short(e)})") from e
        except HfHubHTTPError as e:
            raise WeightsError(f"{source}: the Hub refused {name}: {_short(e)}") from e

    def pickle_hint() -> str:  # Hub files are only probed (HEAD), never downloaded
        if cache_only:
            return ""
        api = HfApi(token=token)
        return _pickle_message([n for n in PICKLE_NAMES if api.file_exists(source, n, revision=revision)])

    return fetch(CONFIG_NAME), fetch(WEIGHTS_NAME), pickle_hint


def _short(error: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an error, cut to ``limit`` characters (a hostile config must not echo 9 MB)."""
    line = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return line if len(line) <= limit else line[:limit] + "…"

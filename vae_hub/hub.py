"""What loading untrusted weights needs beyond the mixin, and the Hub metadata and model card of every model.

The card is one ``ModelCard`` template: a bare ``save_pretrained`` renders its first part, training and
evaluation fill in the rest (their numbers are the template's variables; see ``training/card.py``).
"""

import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, errors, hf_hub_download

REPO_URL = "https://github.com/vae-hub/vae-hub"
PAPER_URL = "https://arxiv.org/abs/1312.6114"
WEIGHTS_NAME = "model.safetensors"
PICKLE_NAMES = ("pytorch_model.bin", "model.bin", "model.pt", "model.pth", "model.ckpt")  # refused, never read
MAX_CONFIG_BYTES = 64 * 1024  # a real config.json is about 100 bytes


class WeightsError(ValueError):
    """A weights folder or Hub repo that cannot be loaded safely; the message names the problem."""


CARD_TEMPLATE = (Path(__file__).parent / "model_card.md").read_text(encoding="utf-8")  # the Jinja template

# Class arguments of the mixin: the card's metadata and template.
CARD_METADATA: dict[str, Any] = {
    "library_name": "vae-hub",
    "tags": ["vae", "variational-autoencoder", "mnist", "image-generation", "pytorch", "vae-hub"],
    "license": "cc-by-sa-3.0",
    "pipeline_tag": "image-to-image",
    "repo_url": REPO_URL,
    "paper_url": PAPER_URL,
    "model_card_template": CARD_TEMPLATE,
}


def first_line(error: BaseException, limit: int = 300) -> str:
    """An error's first non-empty line, cut to ``limit`` characters (a hostile file must not echo megabytes)."""
    line = next((s for s in str(error).splitlines() if s.strip()), type(error).__name__)
    return line if len(line) <= limit else line[:limit] + "…"


def _not_here(source: str) -> str:
    return f"{os.path.abspath(source)} does not exist (relative paths are resolved against {os.getcwd()})"


def check_source(source: str, kwargs: dict[str, Any]) -> bool:
    """Refuse at once what cannot be a model, before the mixin reads it. If the Hub cannot be reached, set ``kwargs``
    to use the local cache only (the download would retry for half a minute) and return True."""
    if os.path.isdir(source):
        config = Path(source, "config.json")
        if config.exists() and not (config.is_file() and 0 < config.stat().st_size <= MAX_CONFIG_BYTES):
            raise WeightsError(
                f"{source}: config.json is not a regular file of 1 to {MAX_CONFIG_BYTES:,} bytes "
                f"({config.stat().st_size:,} bytes)"
            )
        return False
    if os.path.isfile(source):
        raise WeightsError(f"{source} is a file: pass the folder that holds config.json and {WEIGHTS_NAME}")
    # A Hub id is "name" or "user/name"; anything else (./x, /x, ~/x, a/b/c) can only be a wrong local path.
    if source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source:
        raise WeightsError(f"no such model folder: {source} ({_not_here(source)})")
    if kwargs.get("local_files_only"):
        return False
    revision = kwargs.get("revision")
    try:  # one quick request, without the download's retries
        HfApi(token=kwargs.get("token")).model_info(source, revision=revision, timeout=10)
    except errors.RevisionNotFoundError as e:
        raise WeightsError(f"{source}: revision {revision!r} does not exist on the Hub") from e
    except errors.HfHubHTTPError as e:
        raise WeightsError(explain(source, e)) from e
    except errors.HFValidationError as e:
        raise WeightsError(f"{source!r} is neither a local folder nor a valid Hub repo id ({first_line(e)})") from e
    except Exception:  # no network, DNS failure, refused connection, timeout
        kwargs["local_files_only"] = True
        return True
    return False


def explain(source: str, error: BaseException, offline: bool = False) -> str:
    """One line for an error raised while the mixin read config.json or the Hub answered (``offline``: the Hub
    could not be reached, so only the cache was looked at)."""
    if isinstance(error, RecursionError):
        return f"{source}: config.json is nested too deeply to be a config"
    if isinstance(error, UnicodeDecodeError) or isinstance(error, ValueError) and "JSON" in type(error).__name__:
        return f"{source}: config.json is not valid JSON ({first_line(error)})"
    if isinstance(error, AttributeError):  # the mixin calls config.items() on whatever the JSON holds
        return f"{source}: config must be a JSON object"
    as_id = f"{source!r} is not a local folder ({_not_here(source)}) and, read as a Hub repo id, it"
    if isinstance(error, errors.LocalEntryNotFoundError):
        why = "the Hub could not be reached" if offline else "local_files_only=True"
        return f"{as_id} is not in the local cache ({why})"
    if isinstance(error, errors.HfHubHTTPError):
        status = error.response.status_code if error.response is not None else "?"
        if status in (401, 403, 404):
            return f"{as_id} does not exist or is private (HTTP {status}; log in with `hf auth login` or pass token=)"
        return f"{source}: the Hub refused the request (HTTP {status}: {first_line(error)})"
    return f"{source}: {type(error).__name__}: {first_line(error)}"


def weights_file(
    model_id: str, revision: str | None, cache_dir: Any, force_download: bool, local_files_only: bool, token: Any
) -> str:
    """The path of ``model.safetensors`` (downloaded if need be); a pickle in its place is refused, unread."""
    if os.path.isdir(model_id):
        if os.path.isfile(path := os.path.join(model_id, WEIGHTS_NAME)):
            return path
        pickles = [n for n in PICKLE_NAMES if os.path.isfile(os.path.join(model_id, n))]
    else:
        try:
            return hf_hub_download(
                model_id,
                WEIGHTS_NAME,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                local_files_only=local_files_only,
                token=token,
            )
        except errors.RemoteEntryNotFoundError:  # a LocalEntryNotFoundError (not cached) is explain()'s
            api = HfApi(token=token)  # probed with HEAD requests, never downloaded
            pickles = [n for n in PICKLE_NAMES if api.file_exists(model_id, n, revision=revision)]
    if pickles:
        raise WeightsError(
            f"{model_id}: no {WEIGHTS_NAME} found. It holds {pickles[0]}, a pickle file, which is refused: unpickling "
            "can run arbitrary code. Convert it to safetensors with a tool you trust."
        )
    raise WeightsError(f"{model_id}: no {WEIGHTS_NAME} found.")


def load_state(path: str, expected: dict[str, torch.Size], source: str) -> dict[str, torch.Tensor]:
    """The tensors at ``path``: every one the config implies, with its shape, finite floating point, nothing else."""
    from safetensors.torch import load_file

    try:
        state = load_file(path, device="cpu")
    except Exception as e:  # SafetensorError, OSError, a header that is no JSON…
        raise WeightsError(f"{source}: {WEIGHTS_NAME} is corrupt or truncated ({first_line(e)})") from e
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"{source}: {WEIGHTS_NAME} does not match config.json: missing tensors {missing[:8]}, unexpected "
            f"tensors {unexpected[:8]}"
        )
    for name, tensor in state.items():
        shape, implied = tuple(tensor.shape), tuple(expected[name])
        if shape != implied:
            raise WeightsError(f"{source}: tensor {name!r} has shape {shape} but config.json implies {implied}")
        if tensor.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            raise WeightsError(f"{source}: tensor {name!r} is {tensor.dtype}, not a float32/16/64 or bfloat16")
        if not torch.isfinite(tensor).all():
            raise WeightsError(f"{source}: tensor {name!r} holds NaN or infinite values")
    return state

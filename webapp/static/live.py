"""What the page's decoder (``vaehub.js``) fetches for each model the app serves, and the URLs it fetches them at.

Per model, under ``live/<name>/``:

- ``config.json``: the architecture (from the model as loaded);
- ``model.safetensors``: the model's own weights file, served where it lies (a Hub model's in the Hub cache). The
  script reads the header and the decoder's tensors only, with HTTP Range;
- ``latent_map.safetensors``: the map the app holds (``mu`` float16 (N, D), ``labels`` uint8 (N,)), in the cache
  format of :mod:`webapp.latent_map`.

:func:`files` maps each URL path to its file or bytes for :class:`webapp.gate.Gate`, which serves exactly these;
:func:`manifest` gives the page the same URLs, relative, so that a path prefix behind a proxy keeps working.
"""

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from vae_hub.hub import weights_file
from vae_hub.model import VAE
from webapp import latent_map

SCRIPT = Path(__file__).resolve().parent / "vaehub.js"
PREFIX = "live/"
NAMES = {"config": "config.json", "weights": "model.safetensors", "map": "latent_map.safetensors"}
SCRIPT_TAG = f'<script src="{PREFIX}{SCRIPT.name}"></script>'


def files(
    models: Mapping[str, VAE], sources: Mapping[str, str | os.PathLike], maps: Mapping[str, latent_map.LatentMap]
) -> dict[str, Path | bytes]:
    """URL path → what is served there: the script, and each model's three files."""
    out: dict[str, Path | bytes] = {f"/{PREFIX}{SCRIPT.name}": SCRIPT}
    for name, model in models.items():
        # The weights file the model was loaded from: a folder's, or the Hub cache's (local only: it is there).
        weights = Path(weights_file(os.fspath(sources[name]), None, None, False, True, None))
        config = json.dumps(dataclasses.asdict(model.config)).encode()
        for kind, item in (("config", config), ("weights", weights), ("map", latent_map.to_bytes(maps[name]))):
            out[f"/{PREFIX}{name}/{NAMES[kind]}"] = item
    return out


def manifest(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{name: {config, weights, map}}``: the relative URLs ``vaeHub.register`` takes."""
    return {name: {kind: f"{PREFIX}{name}/{file}" for kind, file in NAMES.items()} for name in names}

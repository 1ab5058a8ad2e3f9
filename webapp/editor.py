"""Gradio's Sketchpad/ImageEditor values (dicts of ``background``, ``layers``, ``composite``) as one image array.

App code: the library's :func:`vae_hub.preprocess.to_mnist` takes images; this turns an editor's value into one.
"""

from __future__ import annotations

import numpy as np

from vae_hub.preprocess import InputError, as_rgba, to_float_array

EMPTY_SKETCH_MESSAGE = "The sketchpad is empty: draw a digit first."


def editor_image(value: dict) -> np.ndarray:
    """A Sketchpad/ImageEditor value: the composite if present, else the layers over the background."""
    if "path" in value and not {"background", "layers", "composite"} & value.keys():
        return _array(value)  # a Gradio FileData dict
    if value.get("composite") is not None:
        return _array(value["composite"])
    layers = [x for x in value.get("layers") or [] if x is not None]
    background = value.get("background")
    if not layers:
        if background is None:
            raise InputError(EMPTY_SKETCH_MESSAGE)
        return _array(background)
    rgba = [as_rgba(_array(x)) for x in ([background] if background is not None else []) + layers]
    out = rgba[0]
    for layer in rgba[1:]:
        if layer.shape != out.shape:
            raise InputError(f"The sketch's layers differ in size ({layer.shape[:2]} vs {out.shape[:2]}).")
        alpha = layer[..., 3:]  # "over" compositing
        out_a = alpha + out[..., 3:] * (1 - alpha)
        rgb = (layer[..., :3] * alpha + out[..., :3] * out[..., 3:] * (1 - alpha)) / np.maximum(out_a, 1e-6)
        out = np.concatenate([rgb, out_a], axis=-1)
    return out


def _array(item: object) -> np.ndarray:
    """One entry of an editor's value: an image, a file path, or a Gradio FileData dict (``{"path": ...}``)."""
    if isinstance(item, dict):
        if not isinstance(item.get("path"), str):
            raise InputError("The editor sent an entry that is not an image.")
        item = item["path"]
    return to_float_array(item)

"""What the app accepts from a client, enforced on the built page: files, numbers, concurrency, the upload cache.

:func:`harden` is applied to the :class:`gradio.Blocks` that :func:`webapp.ui.build` returns, so that every event
listener the page has (present or future) gets the same rules:

- **Files.** An image input only ever names a file that Gradio itself received as an upload (its upload cache) or
  one of the app's examples. ``/reconstruct`` takes its input unprocessed (so that :mod:`vae_hub.preprocess` decodes
  it with its own caps), and a FileData dict without Gradio's ``meta`` field skips Gradio's own path checks: without
  this rule a client could make the app open any path on the server. Anything else is refused with one message,
  the same whether the path exists or not.
- **Editors are not decoded by Gradio.** A Sketchpad/ImageEditor value reaches the handler as file paths (or bytes),
  and :func:`vae_hub.preprocess.to_mnist` decodes it with its size cap and early reduction, instead of Gradio turning
  every layer into a full-size array first (2 GB for a 49-megapixel 1-bit PNG).
- **Numbers** (sliders, the seed) must be finite: NaN and ±inf get a clear message.
- **One queue.** All listeners share one concurrency group, so the app runs at most ``--concurrency`` requests at
  once in total, not that many per listener.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder

from . import EXAMPLES_DIR

NOT_UPLOADED_MESSAGE = "Only images uploaded to this page can be used: upload the picture again."
CONCURRENCY_ID = "vae-hub"  # the one concurrency group every listener joins
MAX_INTEGER = 2**53  # integers beyond this are not exact in JSON numbers (and overflow torch's seed)
IMAGE_INPUTS = (gr.Image, gr.ImageEditor)  # components whose value names a file on the server


def allowed_roots() -> tuple[Path, ...]:
    """The folders whose files an image input may name: Gradio's upload cache and the app's examples."""
    return tuple(Path(os.path.realpath(p)) for p in (get_upload_folder(), EXAMPLES_DIR))


def checked_path(path: Any, roots: Iterable[Path]) -> str:
    """``path`` resolved (symlinks, ``..``) if it lies inside one of ``roots``; else :data:`NOT_UPLOADED_MESSAGE`.

    The decision looks at the name only, never at the file, so a refusal says nothing about what exists.
    """
    if not isinstance(path, (str, os.PathLike)) or "\0" in os.fspath(path):
        raise gr.Error(NOT_UPLOADED_MESSAGE, print_exception=False)
    real = Path(os.path.realpath(os.fspath(path)))
    if not any(real.is_relative_to(root) and real != root for root in roots):
        raise gr.Error(NOT_UPLOADED_MESSAGE, print_exception=False)
    return str(real)


def checked_image(value: Any, roots: Iterable[Path]) -> Any:
    """An image input rebuilt from its parts, every file name in it checked by :func:`checked_path`.

    Accepts None, a path, bytes, a FileData dict or model, and a Sketchpad/ImageEditor value (a dict of
    ``background``, ``layers``, ``composite``, each of them one of the former); anything else is refused.
    """
    roots = tuple(roots)
    if value is None or isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, FileData):
        return checked_path(value.path, roots)
    if isinstance(value, (str, os.PathLike)):
        return checked_path(value, roots)
    if isinstance(value, dict):
        if {"background", "layers", "composite"} & value.keys():
            layers = value.get("layers") or []
            if not isinstance(layers, list):
                raise gr.Error("The drawing's layers must be a list of images.", print_exception=False)
            return {
                "background": checked_image(value.get("background"), roots),
                "layers": [checked_image(x, roots) for x in layers],
                "composite": checked_image(value.get("composite"), roots),
            }
        if "path" in value:
            return checked_path(value["path"], roots)
    raise gr.Error(
        f"Unsupported image value of type {type(value).__name__}: upload a PNG, JPEG or WebP.", print_exception=False
    )


def uploads_only(fn: Callable, image_args: Iterable[int]) -> Callable:
    """``fn`` with its positional arguments at ``image_args`` passed through :func:`checked_image` first."""
    image_args = frozenset(image_args)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        roots = allowed_roots()
        args = tuple(checked_image(a, roots) if i in image_args else a for i, a in enumerate(args))
        return fn(*args, **kwargs)

    return wrapper


def undecoded_editor(editor: gr.ImageEditor) -> None:
    """Make ``editor`` hand its value on as file paths (bytes for canvas blobs) instead of decoded arrays.

    Its ``preprocess`` is replaced on the instance (subclassing a component makes Gradio write a .pyi file beside
    us); the paths are checked by :func:`uploads_only`, and decoded by ``to_mnist`` with its own size cap.
    """

    def part(file: Any) -> Any:
        return file.path if isinstance(file, FileData) else file  # bytes (the editor's blob channel) or None

    def preprocess(payload: Any) -> dict | None:
        if payload is None:
            return None
        source = payload
        if getattr(payload, "id", None) is not None:  # sent through the editor's blob channel, held in memory
            source = editor.blob_storage.pop(payload.id, None) or payload
        return {
            "background": part(source.background),
            "layers": [part(x) for x in source.layers or [] if x is not None],
            "composite": part(source.composite),
        }

    editor.preprocess = preprocess


def finite_numbers(component: gr.Number | gr.Slider) -> None:
    """Make ``component`` refuse NaN, ±inf (and integers too large to be exact) with a clear message."""
    check = component.preprocess
    name = component.label or "This number"

    def preprocess(payload: Any) -> Any:
        if isinstance(payload, float) and not math.isfinite(payload):
            raise gr.Error(f"{name} must be a finite number, got {payload}.", print_exception=False)
        if isinstance(payload, (int, float)) and abs(payload) > MAX_INTEGER:
            raise gr.Error(f"{name} must be between -{MAX_INTEGER} and {MAX_INTEGER}.", print_exception=False)
        return check(payload)

    component.preprocess = preprocess


def harden(demo: gr.Blocks, upload_cache: tuple[int, int] | None = None) -> gr.Blocks:
    """Apply the module's rules to every component and listener of ``demo`` (before it is queued and launched).

    ``upload_cache`` is Gradio's ``delete_cache`` (every ``[0]`` seconds, delete uploads older than ``[1]``).
    """
    for block in demo.blocks.values():
        if isinstance(block, gr.ImageEditor):
            undecoded_editor(block)
        elif isinstance(block, (gr.Number, gr.Slider)):
            finite_numbers(block)
    for fn in demo.fns.values():
        if fn.fn is None:
            continue  # a browser-side (js) listener
        image_args = [i for i, c in enumerate(fn.inputs) if isinstance(c, IMAGE_INPUTS)]
        if image_args:
            fn.fn = uploads_only(fn.fn, image_args)
        fn.concurrency_id = CONCURRENCY_ID
    if upload_cache is not None:
        demo.delete_cache = upload_cache
    return demo

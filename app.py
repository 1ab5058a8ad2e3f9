"""The vae-hub demo: upload or draw a digit, see both variants reconstruct it, browse the latent space.

    python app.py                                  # http://127.0.0.1:7860, the bundled weights, no network
    python app.py --model sgvb=USER/vae-mnist-sgvb --port 8080 --share

Every flag has an environment variable (see ``--help``); a Hugging Face Space runs this file as is.
The logic lives in ``vae_hub`` (preprocess, demo, latent_map); this file only wires it to widgets.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# No network unless asked for: Gradio would otherwise send usage analytics from every start.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
import numpy as np
import torch
from PIL import Image

from vae_hub import VAE, WeightsError
from vae_hub import latent_map as lm
from vae_hub.demo import TITLES, VARIANTS, decode_grid, interpolate, load_models, sample_grid, score, to_uint8
from vae_hub.preprocess import MAX_FILE_BYTES, MAX_PIXELS, InputError, to_mnist

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
CACHE_DIR = Path(os.environ.get("VAE_HUB_MAP_CACHE") or ROOT / "assets" / "latent_map")  # see vae_hub.latent_map
DEFAULT_MODELS = {v: str(ROOT / "weights" / v) for v in VARIANTS}
ENV_MODELS = {v: f"VAE_HUB_{v.upper()}" for v in VARIANTS}  # VAE_HUB_SGVB, VAE_HUB_KL_WO_E
DEFAULT_CONCURRENCY = 2  # requests processed at once: one per CPU core of the target machine (see docs/app.md)
VIEW_SCALE = 8  # 28×28 digits are shown at 224×224, nearest neighbour
OUTPUT_DIR = Path(tempfile.gettempdir()) / "vae_hub_app"  # the images sent back, named by content
EXAMPLES = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))
# Small digits are enlarged by the browser without blurring.
CSS = ".pixelated img { image-rendering: pixelated; object-fit: contain; width: 100%; height: 100%; }"

SELECT_BRUSH_JS = """() => {
  const pick = (tries) => {
    const brush = document.querySelector("#sketch button[aria-label='Brush']");
    if (brush) brush.click(); else if (tries > 0) setTimeout(() => pick(tries - 1), 100);
  };
  pick(20);
}"""

log = logging.getLogger("vae_hub.app")
# Pillow refuses images above twice this many pixels before decoding them, wherever Gradio decodes an upload.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2


def png_file(img: np.ndarray) -> str:
    """Write an image as a PNG named by its content, atomically, and return its path.

    Gradio writes returned arrays into its cache by rewriting the file in place. Two requests with the same
    output (two users sending the same example) then race, and one may be served a truncated file. A file written
    under a temporary name and renamed into place is never seen half-written, and Gradio copies it into its
    cache atomically.
    """
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    data = buf.getvalue()
    path = OUTPUT_DIR / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=OUTPUT_DIR, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return str(path)


def images_as_files(fn: Callable) -> Callable:
    """Return a handler's images (uint8 arrays) as PNG files (see :func:`png_file`); other values unchanged."""

    def convert(value: Any) -> Any:
        return png_file(value) if isinstance(value, np.ndarray) and value.dtype == np.uint8 else value

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        return tuple(convert(v) for v in out) if isinstance(out, tuple) else convert(out)

    return wrapper


def prune_outputs(max_age_s: float = 3600) -> None:
    """Delete output files older than ``max_age_s`` (Gradio's own cache is pruned by ``delete_cache``)."""
    now = time.time()
    for f in OUTPUT_DIR.glob("*.png"):
        try:
            if now - f.stat().st_mtime > max_age_s:
                f.unlink()
        except OSError:
            pass  # another process pruned it first


def friendly(fn: Callable) -> Callable:
    """Turn the library's errors into messages for the user; anything unexpected is logged, never shown raw."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as e:  # InputError, and the library's argument checks (grid size, dims, …)
            raise gr.Error(str(e), print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("Something went wrong with this request; please try another image.") from None

    return wrapper


def readable(editor: gr.ImageEditor) -> gr.ImageEditor:
    """Make an ImageEditor's undecodable uploads reach the user as a clear message instead of a bare "Error".

    Its values come through the editor's own upload channel, so they must be decoded by its ``preprocess``;
    that is wrapped on the instance, because subclassing a component makes Gradio write a .pyi file beside us.
    """
    decode = editor.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return decode(payload)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise gr.Error(f"The image could not be read ({e}). Upload a PNG, JPEG or WebP.") from None

    editor.preprocess = preprocess
    return editor


def sketchpad(label: str, editor: type[gr.ImageEditor] = gr.Sketchpad, **kwargs: Any) -> gr.ImageEditor:
    """A Sketchpad (black brush, transparent 800×800 canvas: the strokes are in the alpha channel)."""
    brush = gr.Brush(default_size=30, colors=["#000000"], color_mode="fixed")  # ≈ MNIST's stroke for an 800 canvas
    return readable(
        editor(
            label=label,
            type="numpy",
            image_mode="RGBA",
            brush=brush,
            canvas_size=(800, 800),
            transforms=(),
            layers=False,
            **kwargs,
        )
    )


class Handlers:
    """The app's event handlers: plain functions of arrays and numbers, unit-tested and called over HTTP."""

    def __init__(self, models: Mapping[str, VAE], maps: Mapping[str, lm.LatentMap]) -> None:
        self.models, self.maps = dict(models), dict(maps)
        self.latent_dim = next(iter(self.models.values())).latent_dim

    def _model(self, variant: str) -> VAE:
        if variant not in self.models:
            raise InputError(f"unknown variant {variant!r}; choose one of {sorted(self.models)}")
        return self.models[variant]

    def reconstruct(self, image: Any) -> tuple:
        """Any image → (the 28×28 input, one reconstruction per variant, the scores table, the digit)."""
        if image is None:  # the input was cleared
            return (None, *([None] * len(self.models)), [], None)
        x = to_mnist(image)
        recs, rows = [], []
        for name, model in self.models.items():
            recs.append(to_uint8(model.reconstruct(x)[0, 0], VIEW_SCALE))
            s = score(model, x)
            rows.append([TITLES.get(name, name), round(s.nelbo, 2), round(s.rec, 2), round(s.kl, 2), str(s.mu)])
        return (to_uint8(x[0], VIEW_SCALE), *recs, rows, x[0].numpy())

    @torch.no_grad()
    def code(self, variant: str, digit: np.ndarray | None) -> list[float]:
        """μ of the current digit under ``variant`` (zeros if there is none yet)."""
        if digit is None:
            return [0.0] * self.latent_dim
        mu = self._model(variant).encode(torch.as_tensor(digit, dtype=torch.float32).reshape(1, -1))[0][0]
        return [round(float(v), 2) for v in mu.clamp(-3, 3)]

    def grid(self, variant: str, dim_x: int, dim_y: int, span: str, k: float, n: int, *z: float) -> np.ndarray:
        """The decoded n×n sweep over (dim_x, dim_y); ``span`` is "quantile" or "sigma" (then ±k σ)."""
        if span not in ("quantile", "sigma"):
            raise InputError(f"the range must be 'quantile' or 'sigma', got {span!r}")
        base = list(z) if z else None
        return decode_grid(
            self._model(variant), int(n), (int(dim_x), int(dim_y)), span if span == "quantile" else k, base
        )

    def samples(self, variant: str, n: int, seed: float) -> np.ndarray:
        """n×n draws from the prior, decoded, for a given seed."""
        return sample_grid(self._model(variant), int(n), int(seed))

    def interpolate(self, a: Any, b: Any, steps: int) -> tuple:
        """Two images → the decoded straight path between their codes, one strip per variant."""
        if a is None or b is None:
            raise InputError("Give two digits: upload, draw or pick one on each side.")
        xa, xb = to_mnist(a), to_mnist(b)
        strips = []
        for model in self.models.values():
            path = interpolate(model, xa, xb, int(steps))  # (steps, 1, 28, 28)
            strips.append(to_uint8(torch.cat(list(path[:, 0]), dim=1), 4))
        return tuple(strips)

    def latent_map(self, variant: str, dim_x: int, dim_y: int, digit: np.ndarray | None) -> np.ndarray:
        """The test digits' posterior means over (dim_x, dim_y) under ``variant``, the current digit marked."""
        self._model(variant)  # a clear message for an unknown variant
        current = None if digit is None else self.code(variant, digit)
        return lm.render(self.maps[variant], (int(dim_x), int(dim_y)), current, TITLES.get(variant, variant))


def build(handlers: Handlers) -> gr.Blocks:
    """The four tabs, wired to ``handlers``."""
    h = {
        name: friendly(images_as_files(getattr(handlers, name)))
        for name in ("reconstruct", "code", "grid", "samples", "interpolate", "latent_map")
    }
    variants = [(TITLES.get(v, v), v) for v in handlers.models]
    dims = list(range(handlers.latent_dim))
    with gr.Blocks(title="vae-hub: a VAE for MNIST", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# vae-hub: a variational autoencoder for MNIST\n"
            "Upload or draw a digit: it is turned into a 28×28 MNIST-style image, encoded to a 4-D code and "
            "decoded again by two models trained with different KL estimators."
        )
        digit = gr.State(None)  # the current digit as the model sees it (28×28), shared by the tabs
        with gr.Tab("Reconstruct"):
            with gr.Row():
                with gr.Column(scale=2):
                    with gr.Tabs():
                        with gr.Tab("Upload"):
                            upload = gr.Image(
                                label="A digit (PNG, JPEG, WebP; any size)",
                                type="filepath",
                                sources=["upload", "clipboard"],
                                elem_id="upload",
                                height=320,
                                elem_classes="pixelated",
                            )
                            gr.Examples(EXAMPLES, inputs=upload, label="MNIST test digits", examples_per_page=30)
                        with gr.Tab("Draw") as draw_tab:
                            sketch = sketchpad("Draw a digit", elem_id="sketch", height=520)
                        # Gradio's editor opens with no tool selected: pick the brush, so one can draw at once.
                        draw_tab.select(None, js=SELECT_BRUSH_JS)
                with gr.Column(scale=3):
                    with gr.Row():
                        view = gr.Image(
                            label="What the model sees (28×28)",
                            format="png",
                            elem_id="view",
                            elem_classes="pixelated",
                            interactive=False,
                        )
                        recs = [
                            gr.Image(
                                label=f"{TITLES.get(v, v)}",
                                format="png",
                                elem_id=f"rec_{v}",
                                elem_classes="pixelated",
                                interactive=False,
                            )
                            for v in handlers.models
                        ]
                    table = gr.Dataframe(
                        headers=["variant", "nELBO", "reconstruction", "KL", "μ"],
                        label="Per image, in nats (nELBO = reconstruction + KL)",
                        interactive=False,
                        elem_id="scores",
                    )
            outputs = [view, *recs, table, digit]
            # Uploads arrive unprocessed (a file path) so that vae_hub.preprocess decodes them with its own
            # size cap, first-frame and EXIF handling, and clear errors.
            upload.change(h["reconstruct"], upload, outputs, api_name="reconstruct", preprocess=False)
            sketch.change(h["reconstruct"], sketch, outputs, api_name="reconstruct_drawing", trigger_mode="always_last")

        with gr.Tab("Latent grid"):
            with gr.Row():
                with gr.Column(scale=2):
                    g_variant = gr.Radio(variants, value=variants[0][1], label="Variant")
                    with gr.Row():
                        g_x = gr.Dropdown(dims, value=0, label="Sweep dimension →")
                        g_y = gr.Dropdown(dims, value=1, label="Sweep dimension ↑")
                    g_span = gr.Radio(
                        [("Gaussian quantiles", "quantile"), ("± k σ", "sigma")], value="quantile", label="Range"
                    )
                    g_k = gr.Slider(0.5, 4, value=2, step=0.1, label="k (for ± k σ)")
                    g_n = gr.Slider(5, 25, value=15, step=1, label="Grid size")
                    gr.Markdown("The other dimensions (the two swept ones are ignored):")
                    g_z = [gr.Slider(-3, 3, value=0, step=0.05, label=f"z{d}") for d in dims]
                    g_code = gr.Button("Start from my digit's code")
                    g_go = gr.Button("Decode grid", variant="primary")
                    with gr.Row():
                        g_seed = gr.Number(0, precision=0, label="Seed")
                        g_sample = gr.Button("Random samples")
                g_out = gr.Image(label="Decoded grid", format="png", elem_id="grid", interactive=False, scale=3)
            g_inputs = [g_variant, g_x, g_y, g_span, g_k, g_n, *g_z]
            g_go.click(h["grid"], g_inputs, g_out, api_name="grid")
            gr.on([c.release for c in (g_k, g_n, *g_z)], h["grid"], g_inputs, g_out, api_visibility="private")
            g_code.click(h["code"], [g_variant, digit], g_z, api_name="code").then(
                h["grid"], g_inputs, g_out, api_visibility="private"
            )
            g_sample.click(h["samples"], [g_variant, g_n, g_seed], g_out, api_name="samples")

        with gr.Tab("Interpolate"):
            with gr.Row():
                ends = []
                for side in ("A", "B"):
                    with gr.Column():
                        ed = sketchpad(
                            f"Digit {side}: upload or draw",
                            gr.ImageEditor,
                            sources=["upload", "clipboard"],
                            fixed_canvas=True,
                            height=420,
                            elem_id=f"interp_{side.lower()}",
                        )
                        gr.Examples(
                            EXAMPLES,
                            inputs=ed,
                            label=f"Pick digit {side}",
                            examples_per_page=10,
                            elem_id=f"examples_{side.lower()}",
                        )
                        ends.append(ed)
            with gr.Row():
                i_steps = gr.Slider(2, 25, value=10, step=1, label="Steps")
                i_go = gr.Button("Interpolate", variant="primary")
            i_out = [
                gr.Image(
                    label=f"{TITLES.get(v, v)}: A → B",
                    format="png",
                    interactive=False,
                    elem_classes="pixelated",
                    elem_id=f"interp_out_{v}",
                )
                for v in handlers.models
            ]
            i_go.click(h["interpolate"], [*ends, i_steps], i_out, api_name="interpolate")

        with gr.Tab("Latent map") as map_tab:
            with gr.Row():
                m_variant = gr.Radio(variants, value=variants[0][1], label="Variant")
                m_x = gr.Dropdown(dims, value=0, label="Dimension →")
                m_y = gr.Dropdown(dims, value=1, label="Dimension ↑")
            m_out = gr.Image(
                label="Test digits' posterior means; ★ = your digit", format="png", elem_id="map", interactive=False
            )
            m_inputs = [m_variant, m_x, m_y, digit]
            gr.on(
                [map_tab.select, m_variant.change, m_x.change, m_y.change],
                h["latent_map"],
                m_inputs,
                m_out,
                api_name="latent_map",
            )
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description="Serve the vae-hub demo.")
    p.add_argument(
        "--host",
        default=env("VAE_HUB_HOST") or env("GRADIO_SERVER_NAME") or "127.0.0.1",
        help="address to listen on (env VAE_HUB_HOST or GRADIO_SERVER_NAME; 0.0.0.0 for all)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(env("VAE_HUB_PORT") or env("GRADIO_SERVER_PORT") or 7860),
        help="port (env VAE_HUB_PORT or GRADIO_SERVER_PORT)",
    )
    p.add_argument(
        "--share",
        action="store_true",
        default=env("VAE_HUB_SHARE", "").lower() in ("1", "true", "yes"),
        help="also open a public *.gradio.live link (env VAE_HUB_SHARE=1; needs the network)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="VARIANT=DIR_OR_REPO",
        help="weights for a variant: a save_pretrained folder or a Hub repo id, e.g. "
        "sgvb=USER/vae-mnist-sgvb (env VAE_HUB_SGVB, VAE_HUB_KL_WO_E; default weights/<variant>)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=int(env("VAE_HUB_CONCURRENCY") or DEFAULT_CONCURRENCY),
        help=f"requests processed at once (env VAE_HUB_CONCURRENCY; default {DEFAULT_CONCURRENCY})",
    )
    return p.parse_args(argv)


def model_sources(overrides: list[str]) -> dict[str, str]:
    """``--model VARIANT=SOURCE`` flags over the environment over the bundled weights."""
    sources = {v: os.environ.get(ENV_MODELS[v]) or DEFAULT_MODELS[v] for v in VARIANTS}
    for item in overrides:
        name, sep, src = item.partition("=")
        if not sep or name not in VARIANTS or not src:
            raise SystemExit(f"--model wants VARIANT=DIR_OR_REPO with VARIANT in {list(VARIANTS)}, got {item!r}")
        sources[name] = src
    return sources


def create(sources: Mapping[str, str], data_root: str | None = None) -> tuple[gr.Blocks, Handlers]:
    """Load the models and their latent maps, and build the app (not yet launched)."""
    models = load_models(sources)
    maps = {name: lm.load_or_build(m, CACHE_DIR, EXAMPLES_DIR, data_root) for name, m in models.items()}
    handlers = Handlers(models, maps)
    return build(handlers), handlers


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)  # tiny models: one thread per request, requests side by side, is fastest
    start = time.perf_counter()
    try:
        demo, _ = create(model_sources(args.model))
    except WeightsError as e:
        raise SystemExit(f"cannot load the weights: {e}") from None
    prune_outputs()
    demo.queue(default_concurrency_limit=args.concurrency, max_size=256)
    log.info("ready in %.1f s; queue concurrency %d", time.perf_counter() - start, args.concurrency)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        css=CSS,
        max_file_size=MAX_FILE_BYTES,
        show_error=False,
    )


if __name__ == "__main__":
    main()

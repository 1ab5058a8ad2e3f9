"""The Gradio page: four tabs wired to :class:`webapp.handlers.Handlers`."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from . import EXAMPLES_DIR
from .handlers import TITLES, Handlers
from .outputs import images_as_files

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


def user_errors(fn: Callable) -> Callable:
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


def sketchpad(label: str, editor: type[gr.ImageEditor] = gr.Sketchpad, **kwargs: Any) -> gr.ImageEditor:
    """A Sketchpad (black brush, transparent 800×800 canvas: the strokes are in the alpha channel)."""
    brush = gr.Brush(default_size=30, colors=["#000000"], color_mode="fixed")  # ≈ MNIST's stroke for an 800 canvas
    # Decoded by to_mnist, not by Gradio: webapp.guard makes the editor pass its value on as files.
    return editor(
        label=label,
        type="filepath",
        image_mode="RGBA",
        brush=brush,
        canvas_size=(800, 800),
        transforms=(),
        layers=False,
        **kwargs,
    )


def build(handlers: Handlers) -> gr.Blocks:
    """The four tabs, wired to ``handlers``."""
    h = {
        name: user_errors(images_as_files(getattr(handlers, name)))
        for name in ("reconstruct", "digit_code", "grid", "samples", "interpolate", "latent_map")
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
            g_code.click(h["digit_code"], [g_variant, digit], g_z, api_name="digit_code").then(
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

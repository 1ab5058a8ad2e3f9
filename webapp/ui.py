"""The Gradio page: four tabs wired to :class:`webapp.handlers.Handlers`."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from . import EXAMPLES_DIR
from .handlers import Handlers, element_id
from .outputs import images_as_files

EXAMPLES = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))

CANVAS = 320  # the drawing canvas's side in pixels
BRUSH = 12  # MNIST's strokes are ~2.5 px of 28 (the digit's 20 px box fills most of the canvas)
DRAW_SIDE = 280  # the Draw tab's canvas: CSS pixels and its own pixels alike (fits a 390 px phone)
DRAW_BRUSH = 16  # the same share of the canvas as BRUSH of CANVAS, a little thicker for a finger
THUMB = 168  # 28×28 digits shown at 6× (nearest neighbour)
CSS = """
.pixelated img { image-rendering: pixelated; object-fit: contain; }
table.scores { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.scores th, table.scores td { padding: 2px 6px; text-align: right; white-space: nowrap; }
table.scores th:first-child, table.scores td:first-child { text-align: left; white-space: normal; }
table.scores td.mu { text-align: left; font-family: monospace; color: var(--body-text-color-subdued);
  border-bottom: 1px solid var(--border-color-primary); white-space: normal; }
@media (max-width: 640px) { table.scores { font-size: 0.85em; } }
"""


def select_brush_js(*elem_ids: str) -> str:
    """JavaScript that selects the brush in the editors ``elem_ids`` (Gradio opens them with no tool selected)."""
    selectors = ", ".join(f"#{e} button[aria-label='Brush']" for e in elem_ids)
    return f"""() => {{
  const pick = (tries) => {{
    const brushes = document.querySelectorAll("{selectors}");
    brushes.forEach((b) => b.click());
    if (brushes.length < {len(elem_ids)} && tries > 0) setTimeout(() => pick(tries - 1), 100);
  }};
  pick(20);
}}"""


# After a successful result, an earlier error toast would still cover it: close them.
CLOSE_TOASTS_JS = "() => document.querySelectorAll(\"button[data-testid='toast-close']\").forEach((b) => b.click())"

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
            raise gr.Error(str(e), duration=8, print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("Something went wrong with this request; please try another image.", duration=8) from None

    return wrapper


def sketchpad(label: str, editor: type[gr.ImageEditor] = gr.ImageEditor, **kwargs: Any) -> gr.ImageEditor:
    """An ImageEditor to upload or draw in (black brush on a transparent canvas: the strokes are in the alpha channel).

    The canvas is small (:data:`CANVAS`): it fits a phone at 100 % zoom (a digit needs no more: it is reduced to
    28×28). Its value is decoded by to_mnist, not by Gradio: webapp.guard makes the editor pass its value on as files.
    """
    brush = gr.Brush(default_size=BRUSH, colors=["#000000"], color_mode="fixed")  # ≈ MNIST's stroke width
    return editor(
        label=label,
        type="filepath",
        image_mode="RGBA",
        brush=brush,
        canvas_size=(CANVAS, CANVAS),
        transforms=(),
        layers=False,
        format="png",
        **kwargs,
    )


DRAW_HTML = """<div class="drawpad">
  <div class="bar"><span>Draw a digit</span><button type="button" class="clear">Clear</button></div>
  <canvas width="SIDE" height="SIDE" aria-label="Drawing canvas: draw a digit (mouse, pen or finger)"></canvas>
</div>"""
DRAW_CSS = """
.drawpad { display: flex; flex-direction: column; gap: 6px; align-items: flex-start; }
.bar { display: flex; width: SIDEpx; max-width: 100%; justify-content: space-between; align-items: center; }
.clear { padding: 2px 12px; font-size: var(--text-md); font-weight: normal;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-sm);
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); cursor: pointer; }
canvas { width: SIDEpx; max-width: 100%; aspect-ratio: 1; background: #fff; border: 1px solid
  var(--border-color-primary); border-radius: var(--radius-sm); touch-action: none; cursor: crosshair; }
"""
# Pointer events (mouse, pen and touch alike). On pen-up the canvas (its own pixels, SIDE×SIDE, not scaled by the
# screen's pixel ratio) becomes the component's value as one small PNG data URL, and 'input' sends it.
DRAW_JS = """
const c = element.querySelector('canvas'), ctx = c.getContext('2d');
let last = null;
const at = (e) => { const r = c.getBoundingClientRect();
  return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; };
const line = (a, b) => { ctx.lineWidth = BRUSH; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  ctx.strokeStyle = '#000'; ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke(); };
c.addEventListener('pointerdown', (e) => { e.preventDefault(); c.setPointerCapture(e.pointerId);
  last = at(e); line(last, last); });
c.addEventListener('pointermove', (e) => { if (!last) return;
  const evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const ev of evs.length ? evs : [e]) { const p = at(ev); line(last, p); last = p; } });
const end = () => { if (!last) return; last = null;
  props.value = c.toDataURL('image/png'); trigger('input'); };
c.addEventListener('pointerup', end);
c.addEventListener('pointercancel', end);
element.querySelector('button.clear').addEventListener('click', () => {
  last = null; ctx.clearRect(0, 0, c.width, c.height); props.value = ''; trigger('clear'); });
"""


def drawing_canvas(elem_id: str, side: int = DRAW_SIDE, brush: int = DRAW_BRUSH) -> gr.HTML:
    """A plain ``<canvas>`` to draw on (black strokes on a transparent canvas shown white); its value is the drawing
    as a PNG data URL, sent with an ``input`` event on each pen-up, and '' with a ``clear`` event when cleared.

    Gradio's own editor renders and uploads three layers from WebGL on every stroke (≈ 1 s in a browser without a
    GPU); this canvas sends one PNG of a few KB.
    """
    fill = {"SIDE": str(side), "BRUSH": str(brush)}

    def sub(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    return gr.HTML(
        "", html_template=sub(DRAW_HTML), css_template=sub(DRAW_CSS), js_on_load=sub(DRAW_JS), elem_id=elem_id
    )


def scores_html(rows: list[list[str]]) -> str:
    """The scores as an HTML table; each model's μ on its own line, so the table fits a phone."""
    if not rows:
        return ""
    head = "<tr><th>model</th><th>nELBO</th><th>reconstruction</th><th>KL</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{n}</td><td>{r}</td><td>{k}</td></tr>"
        f"<tr><td class='mu' colspan='4'>μ = {html.escape(mu)}</td></tr>"
        for t, n, r, k, mu in rows
    )
    caption = "<caption>Per image, in nats (nELBO = reconstruction + KL)</caption>"
    return f"<table class='scores'>{caption}<thead>{head}</thead><tbody>{body}</tbody></table>"


def axis_choices(handlers: Handlers, variant: str) -> tuple[Any, Any, list[Any]]:
    """The axis dropdowns and the 'other dimensions' sliders for ``variant``: hidden for a 2-D model (its grid and
    its map are the whole latent space), else the dimensions to choose from and one slider per dimension."""
    d = handlers.models[variant].latent_dim
    many = d > 2
    # The choices stay those of the largest model (Gradio checks a value against the choices it was built with);
    # a dimension a model lacks gets a message from the handler.
    dims = list(range(handlers.max_latent_dim))
    x = gr.update(choices=dims, value=0, visible=many)
    y = gr.update(choices=dims, value=1, visible=many)
    sliders = [gr.update(visible=many and i < d) for i in range(handlers.max_latent_dim)]
    return x, y, sliders


def short_title(title: str) -> str:
    """A model's title shortened for a small image's label ("2-D latent · SGVB (sampled KL)" → "2-D · SGVB"): the
    labels must fit a 120 px image on a phone; the scores table under the images has the full titles."""
    return title.split(" (")[0].replace(" latent", "")


def describe(handlers: Handlers) -> str:
    """The header: what is on the page, true for the models loaded."""
    sizes = sorted({m.latent_dim for m in handlers.models.values()})
    size_text = " and ".join(f"{d}-D" for d in sizes)
    return (
        "# vae-hub: a variational autoencoder for MNIST\n"
        "Upload or draw a digit: it is turned into a 28×28 MNIST-style image, encoded to a latent code and "
        f"decoded again by {len(handlers.models)} models: latent sizes {size_text}, each trained with two KL "
        "estimators (SGVB samples the KL term, *KL w/o E* computes it in closed form). A 2-D latent space can be "
        "seen whole: its grid and its map show all of it."
    )


def build(handlers: Handlers) -> gr.Blocks:
    """The four tabs, wired to ``handlers``."""
    h = {
        name: user_errors(images_as_files(getattr(handlers, name)))
        for name in (
            "reconstruct",
            "reconstruct_drawing",
            "digit_code",
            "grid",
            "samples",
            "interpolate",
            "latent_map",
            "decode_point",
        )
    }
    variants = [(handlers.titles[v], v) for v in handlers.models]
    first = variants[0][1]
    n_rec = len(handlers.models)

    def reconstruct(image: Any, handler: str = "reconstruct") -> tuple:
        out = h[handler](image)
        return (*out[: 1 + n_rec], scores_html(out[1 + n_rec]), out[-1])

    def reconstruct_drawing(url: str | None) -> tuple:
        return reconstruct(url, "reconstruct_drawing")

    def show(image: Any, handler: str = "reconstruct") -> tuple:
        """The results of the input tab just opened; nothing (and no message) while it is empty."""
        try:
            return reconstruct(image, handler)
        except gr.Error:
            return reconstruct(None)

    def on_variant(variant: str) -> tuple:
        x, y, sliders = axis_choices(handlers, variant)
        return (x, y, *sliders)

    def other_axis(moved: int, other: int, variant: str) -> Any:
        """Keep the two axes different: when one is set to the other's dimension, move the other away."""
        if int(moved) != int(other):
            return gr.update()
        d = handlers.models[variant].latent_dim
        return next(i for i in range(d) if i != int(moved))

    def map_click(view: dict | None, digit: Any, evt: gr.SelectData) -> tuple:
        x, y = evt.index
        return user_errors(images_as_files(handlers.decode_click))(view, x, y, digit)

    with gr.Blocks(title="vae-hub: a VAE for MNIST", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(describe(handlers), elem_id="header")
        digit = gr.State(None)  # the current digit as the model sees it (28×28), shared by the tabs
        # "wrap": on a phone all four tabs stay visible on two rows instead of two hiding behind a "•••" menu
        with gr.Tabs(overflow_behavior="wrap", elem_id="main_tabs"):
            with gr.Tab("Reconstruct"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=300):
                        with gr.Tabs():
                            with gr.Tab("Upload") as upload_tab:
                                upload = gr.Image(
                                    label="A digit (PNG, JPEG, WebP; any size)",
                                    type="filepath",
                                    sources=["upload", "clipboard"],
                                    elem_id="upload",
                                    height=280,
                                    elem_classes="pixelated",
                                )
                            with gr.Tab("Draw") as draw_tab:
                                sketch = drawing_canvas("sketch")
                    with gr.Column(scale=3, min_width=300, elem_id="results"):
                        with gr.Row(equal_height=True):
                            # Short labels and no buttons over them: five 120 px images in a row must each show
                            # their whole label (on a phone they wrap two per row).
                            view = gr.Image(
                                label="Input, 28×28",
                                buttons=[],
                                format="png",
                                elem_id="view",
                                elem_classes="pixelated",
                                interactive=False,
                                height=THUMB,
                                min_width=120,
                            )
                            recs = [
                                gr.Image(
                                    label=short_title(handlers.titles[v]),
                                    buttons=[],
                                    format="png",
                                    elem_id=f"rec_{element_id(v)}",
                                    elem_classes="pixelated",
                                    interactive=False,
                                    height=THUMB,
                                    min_width=120,
                                )
                                for v in handlers.models
                            ]
                        table = gr.HTML(elem_id="scores")
                with gr.Accordion("Example digits (MNIST test): click one", open=True, elem_id="examples"):
                    gr.Examples(EXAMPLES, inputs=upload, label=None, examples_per_page=30)
                outputs = [view, *recs, table, digit]
                # Uploads arrive unprocessed (a file path) so that vae_hub.preprocess decodes them with its own
                # size cap, first-frame and EXIF handling, and clear errors.
                upload.change(reconstruct, upload, outputs, api_name="reconstruct", preprocess=False).success(
                    None, js=CLOSE_TOASTS_JS
                )
                # The drawing arrives as a PNG data URL, checked and decoded by handlers.drawing_bytes and to_mnist.
                sketch.input(
                    reconstruct_drawing, sketch, outputs, api_name="reconstruct_drawing", trigger_mode="always_last"
                ).success(None, js=CLOSE_TOASTS_JS)
                sketch.clear(lambda: reconstruct(None), None, outputs, api_visibility="private")
                # The results follow the input shown: switching between Upload and Draw shows that one's results.
                upload_tab.select(show, upload, outputs, api_visibility="private", preprocess=False)
                draw_tab.select(lambda url: show(url, "reconstruct_drawing"), sketch, outputs, api_visibility="private")

            with gr.Tab("Latent grid"):
                with gr.Row():
                    with gr.Column(scale=2, min_width=300):
                        g_variant = gr.Radio(variants, value=first, label="Model")
                        gx, gy, gz = axis_choices(handlers, first)
                        with gr.Row():
                            g_x = gr.Dropdown(gx["choices"], value=0, label="Sweep dimension →", visible=gx["visible"])
                            g_y = gr.Dropdown(gy["choices"], value=1, label="Sweep dimension ↑", visible=gy["visible"])
                        g_span = gr.Radio(
                            [("Gaussian quantiles", "quantile"), ("± k σ", "sigma")], value="quantile", label="Range"
                        )
                        g_k = gr.Slider(0.5, 4, value=2, step=0.1, label="k (for ± k σ)")
                        g_n = gr.Slider(5, 25, value=15, step=1, label="Grid size")
                        g_z = [
                            gr.Slider(-3, 3, value=0, step=0.05, label=f"z{d} (when not swept)", visible=u["visible"])
                            for d, u in enumerate(gz)
                        ]
                        g_code = gr.Button("Start from my digit's code")
                        with gr.Row():
                            g_seed = gr.Number(0, precision=0, label="Seed")
                            g_sample = gr.Button("Random samples")
                    g_out = gr.Image(label="Decoded grid", format="png", elem_id="grid", interactive=False, scale=3)
                g_inputs = [g_variant, g_x, g_y, g_span, g_k, g_n, *g_z]
                g_draw = {"fn": h["grid"], "inputs": g_inputs, "outputs": g_out}
                gr.on(
                    [g_x.change, g_y.change, g_span.change, *(c.change for c in (g_k, g_n, *g_z))],
                    **g_draw,
                    api_name="grid",
                    trigger_mode="always_last",
                )
                g_variant.change(on_variant, g_variant, [g_x, g_y, *g_z], api_visibility="private").then(
                    **g_draw, api_visibility="private"
                )
                g_x.input(other_axis, [g_x, g_y, g_variant], g_y, api_visibility="private")
                g_y.input(other_axis, [g_y, g_x, g_variant], g_x, api_visibility="private")
                demo.load(**g_draw, api_visibility="private")  # the tab opens with a grid, not an empty image
                g_code.click(h["digit_code"], [g_variant, digit], g_z, api_name="digit_code")
                gr.on(
                    [g_sample.click, g_seed.submit], h["samples"], [g_variant, g_n, g_seed], g_out, api_name="samples"
                )

            with gr.Tab("Interpolate") as interp_tab:
                with gr.Row():
                    ends = []
                    for side in ("A", "B"):
                        with gr.Column(min_width=300):
                            ed = sketchpad(
                                f"Digit {side}: upload or draw",
                                gr.ImageEditor,
                                sources=["upload", "clipboard"],
                                fixed_canvas=True,
                                height=CANVAS + 110,
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
                interp_tab.select(None, js=select_brush_js("interp_a", "interp_b"))
                with gr.Row():
                    i_steps = gr.Slider(2, 25, value=10, step=1, label="Steps")
                    i_go = gr.Button("Interpolate", variant="primary")
                i_out = [
                    gr.Image(
                        label=f"{handlers.titles[v]}: A → B",
                        format="png",
                        interactive=False,
                        elem_classes="pixelated",
                        elem_id=f"interp_out_{element_id(v)}",
                    )
                    for v in handlers.models
                ]
                i_go.click(h["interpolate"], [*ends, i_steps], i_out, api_name="interpolate").success(
                    None, js=CLOSE_TOASTS_JS
                )

            with gr.Tab("Latent map") as map_tab:
                gr.Markdown(
                    "The posterior means of MNIST test digits, coloured by class; ★ marks your digit. "
                    "**Click anywhere on the map** to decode that point. A 2-D model's map is its whole latent space; "
                    "for a larger latent, choose the two dimensions shown."
                )
                with gr.Row():
                    m_variant = gr.Radio(variants, value=first, label="Model")
                    m_x = gr.Dropdown(gx["choices"], value=0, label="Dimension →", visible=gx["visible"])
                    m_y = gr.Dropdown(gy["choices"], value=1, label="Dimension ↑", visible=gy["visible"])
                with gr.Row(equal_height=False):
                    m_out = gr.Image(
                        label="Test digits' posterior means", format="png", elem_id="map", interactive=False, scale=3
                    )
                    with gr.Column(scale=1, min_width=180):
                        m_digit = gr.Image(
                            label="Decoded at the clicked point",
                            format="png",
                            elem_id="map_decoded",
                            elem_classes="pixelated",
                            interactive=False,
                            height=THUMB + 40,
                        )
                        m_point = gr.Markdown(elem_id="map_point")
                m_view = gr.State(None)  # the drawn map's geometry: turns a click into latent coordinates
                m_inputs = [m_variant, m_x, m_y, digit]
                m_variant.change(lambda v: on_variant(v)[:2], m_variant, [m_x, m_y], api_visibility="private")
                m_x.input(other_axis, [m_x, m_y, m_variant], m_y, api_visibility="private")
                m_y.input(other_axis, [m_y, m_x, m_variant], m_x, api_visibility="private")
                gr.on(
                    [map_tab.select, m_variant.change, m_x.change, m_y.change],
                    h["latent_map"],
                    m_inputs,
                    [m_out, m_view],
                    api_name="latent_map",
                    trigger_mode="always_last",
                )
                m_out.select(map_click, [m_view, digit], [m_digit, m_point], api_visibility="private")
                # The same decoding by latent coordinates, for programs (tested over HTTP).
                m_go = gr.Button(visible=False)
                m_zx, m_zy = gr.Number(visible=False), gr.Number(visible=False)
                m_go.click(
                    h["decode_point"],
                    [m_variant, m_x, m_y, m_zx, m_zy, digit],
                    [m_digit, m_point],
                    api_name="decode_point",
                )
    return demo

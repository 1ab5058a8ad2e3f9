"""The Gradio page: four tabs wired to :class:`webapp.handlers.Handlers`.

Every listener that runs on the server is a named endpoint (the API), with ``preprocess=False`` (the handlers check
the raw values) and in one concurrency group. Everything else runs in the browser, the latent map and grid included
(``webapp/static/vaehub.js``). One widget takes digits everywhere: a canvas that also uploads or takes an example.
"""

import base64
import functools
import html
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from . import EXAMPLES_DIR
from .gate import Endpoint
from .handlers import Handlers
from .static.live import SCRIPT_TAG

log = logging.getLogger("vae_hub.app")
QUEUE = "vae-hub"  # every endpoint in one concurrency group: --concurrency requests at once in total
INTERNAL = "The server could not process this request (an internal error, logged on the server); please try again."
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.png"))
UPLOADABLE = "image/png,image/jpeg,image/webp,image/gif,image/bmp"
CSS, JS = (Path(__file__).with_name(name).read_text() for name in ("page.css", "page.js"))


def endpoint(fn: Callable) -> Callable:
    """A handler as a listener: its messages for bad input shown as they are, anything unexpected logged and
    answered with :data:`INTERNAL` (never a traceback)."""

    @functools.wraps(fn)
    def run(*args: Any) -> Any:
        try:
            return fn(*args)
        except ValueError as e:  # InputError, and the library's argument checks: sentences meant for the user
            raise gr.Error(str(e), duration=10, print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(INTERNAL, duration=10, print_exception=False) from None

    return run


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def digit_pad(elem_id: str, label: str, value: str | None = None, name: str = "") -> gr.HTML:
    """The one widget for digits: its value is a PNG data URL (drawn, picked) or an upload reference."""
    text, name = html.escape(label), f'<span class="name">{html.escape(name)}</span>' if name else ""
    template = f"""<div class="pad" data-receiver tabindex="0">
  <div class="bar">{name}<label class="btn">Upload<input type="file" accept="{UPLOADABLE}" hidden></label>
    <span class="note">draw, upload or pick</span><button type="button" class="btn clear">Clear</button></div>
  <div class="surface"><canvas width="280" height="280" aria-label="{text}: draw a digit (mouse, pen or finger)">
  </canvas><img alt="{text}" hidden></div>
</div>"""
    js = "vaeHubPage.pad(element, props, trigger, upload);"
    return gr.HTML(value, label=label, html_template=template, js_on_load=js, elem_id=elem_id)


def gallery(elem_id: str, target: str, files: Sequence[Path]) -> gr.HTML:
    """Example digits; a click sends one to the widget ``target``."""
    buttons = "".join(
        f'<button type="button" data-for="{target}" title="example: {f.stem[0]}">'
        f'<img src="{data_url(f)}" alt="example digit {f.stem[0]}"></button>'
        for f in files
    )
    return gr.HTML(f'<div class="gallery">{buttons}</div>', js_on_load="vaeHubPage.gallery(element);", elem_id=elem_id)


def describe(handlers: Handlers) -> str:
    sizes = " and ".join(f"{d}-D" for d in sorted({m.latent_dim for m in handlers.models.values()}))
    return (
        "<h2>vae-hub: a variational autoencoder for MNIST</h2>"
        f"<p>Draw, upload or pick a digit: {len(handlers.models)} models ({sizes} latents; <em>SGVB</em> samples the "
        "KL term, <em>KL w/o E</em> computes it in closed form) encode it and decode it again. A 2-D latent space can "
        "be seen whole.</p>"
    )


def build(
    handlers: Handlers, manifest: dict[str, dict[str, str]], map_sources: dict[str, str]
) -> tuple[gr.Blocks, dict[int, Endpoint]]:
    """The page, and its named endpoints by index (for :class:`webapp.gate.Gate`). ``manifest``: each model's
    files for the page's decoder (:func:`webapp.static.live.manifest`); ``map_sources``: where each map's digits
    come from, said under it."""
    choices = [(handlers.titles[v], v) for v in handlers.models]
    first, most = choices[0][1], max(m.latent_dim for m in handlers.models.values())
    many = handlers.models[first].latent_dim > 2  # the first model's axes and sliders are shown
    dims = [(f"z{i}", i) for i in range(most)]
    sizes = {v: m.latent_dim for v, m in handlers.models.items()}
    live = json.dumps({"models": manifest, "titles": handlers.titles, "sizes": sizes, "sources": map_sources})
    endpoints: dict[int, Endpoint] = {}

    def serve(name: str, triggers: list, fn: Callable, inputs: list, outputs: Any) -> Any:
        dep = gr.on(
            triggers,
            endpoint(fn),
            inputs,
            outputs,
            api_name=name,
            preprocess=False,
            concurrency_id=QUEUE,
            trigger_mode="always_last",
            show_progress="hidden",
        )
        endpoints[dep["id"]] = Endpoint(name, tuple(c.label for c in inputs))
        return dep

    def clears(trigger: Any, output: Any) -> None:
        trigger(None, None, [output], js="() => ['']")

    def codes(tab: str, note: str) -> tuple[list[gr.Slider], gr.Button]:
        """A tab's slider per latent dimension, and the button that sets them to the digit's code."""
        sliders = [
            gr.Slider(-3, 3, value=0, step=0.05, label=f"z{i} ({note})", visible=many, elem_id=f"{tab}_z{i}")
            for i in range(most)
        ]
        return sliders, gr.Button("Start from my digit's code", visible=many)

    def layout(tab: str, model: gr.Radio, x: gr.Dropdown, y: gr.Dropdown, sliders: list, button: gr.Button) -> None:
        """A tab's controls that apply to its model, shown; the button sets the sliders to the digit's code."""
        js = f"(m, x, y) => vaeHubPage.layout({json.dumps(sizes)}, {len(sliders)}, m, x, y)"
        gr.on([model.change, x.change, y.change], None, [model, x, y], [x, y, *sliders, button], js=js)
        browser([button.click], [model, *sliders], sliders, f"(m, ...z) => vaeHubPage.myCode('{tab}', m, z)")

    def browser(triggers: list, inputs: list, outputs: list, js: str) -> None:
        """A listener that runs in the page only: no request, and no index the gate lets through."""
        gr.on(triggers, None, inputs, outputs, js=js, trigger_mode="always_last")

    with gr.Blocks(title="vae-hub: a VAE for MNIST") as demo:
        # The header loads the page's decoder (vaehub.js) and names the models' files: window.vaeHub is there on
        # every tab, and the map and the grid, mounted when their tab first opens, find it loaded.
        gr.HTML(describe(handlers), elem_id="header", head=SCRIPT_TAG, js_on_load=f"vaeHubPage.start({live});")
        with gr.Tabs(overflow_behavior="wrap", elem_id="main_tabs"):  # phone: all four tabs in view
            with gr.Tab("Reconstruct", id="reconstruct"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=290):
                        pad = digit_pad("pad", "Image")
                    with gr.Column(scale=3, min_width=290):
                        # Its figures carry each model's μ of the digit: the map's star and "my digit's code".
                        results = gr.HTML(elem_id="results", js_on_load="vaeHubPage.results(element, watch);")
                gr.Markdown("Example digits (MNIST test): pick one.")
                gallery("examples", "pad", EXAMPLES)
                rec = serve("reconstruct", [pad.input], handlers.reconstruct, [pad], [results])
                clears(rec.failure, results)  # an error leaves no earlier digit's results behind
                clears(pad.clear, results)

            with gr.Tab("Latent grid", id="grid") as grid_tab:
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300, elem_id="grid_col"):  # on a phone: before its controls
                        gr.HTML(elem_id="grid", head=SCRIPT_TAG, js_on_load=f"vaeHubPage.liveGrid(element, {live});")
                        g_out = gr.HTML(elem_id="samples")  # shown in the grid's place (page.css)
                    with gr.Column(scale=2, min_width=290):
                        g_model = gr.Radio(choices, value=first, label="Model", elem_id="grid_model")
                        with gr.Row():
                            g_x = gr.Dropdown(dims, value=0, label="Sweep dimension →", visible=many)
                            g_y = gr.Dropdown(dims, value=1, label="Sweep dimension ↑", visible=many)
                        spans = [("Gaussian quantiles", "quantile"), ("± k σ", "sigma")]
                        g_span = gr.Radio(spans, value="quantile", label="Range")
                        g_k = gr.Slider(0.5, 4, value=2, step=0.1, label="k (for ± k σ)")
                        g_n = gr.Slider(5, 25, value=15, step=1, label="Grid size")
                        g_z, g_code = codes("grid", "when not swept")
                        with gr.Row():
                            g_seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                            g_sample = gr.Button("Random samples")
                controls = [g_model, g_x, g_y, g_span, g_k, g_n, *g_z]
                triggers = [grid_tab.select, *(c.change for c in controls)]
                browser(triggers, controls, [g_out], "(...v) => vaeHubPage.showGrid(...v)")  # and clears samples
                layout("grid", g_model, g_x, g_y, g_z, g_code)
                serve("samples", [g_sample.click, g_seed.submit], handlers.samples, [g_model, g_n, g_seed], g_out)

            with gr.Tab("Interpolate", id="interpolate") as i_tab:
                pads = []
                with gr.Row(equal_height=False):
                    for side, start in (("a", "0_0003.png"), ("b", "7_0000.png")):
                        with gr.Column(min_width=150):
                            start_url = data_url(EXAMPLES_DIR / start)
                            pads.append(digit_pad(f"pad_{side}", f"Digit {side.upper()}", start_url, side.upper()))
                            gallery(f"examples_{side}", f"pad_{side}", EXAMPLES[::3])
                i_steps = gr.Slider(2, 25, value=10, step=1, label="Steps")
                i_out = gr.HTML(elem_id="interp")
                triggers = [i_tab.select, pads[0].input, pads[1].input, i_steps.change]
                dep = serve("interpolate", triggers, handlers.interpolate, [*pads, i_steps], i_out)
                for trigger in (dep.failure, pads[0].clear, pads[1].clear):
                    clears(trigger, i_out)

            with gr.Tab("Latent map", id="map") as m_tab:
                gr.Markdown(
                    "The posterior means of MNIST test digits, coloured by class; ★ marks your digit. Your browser "
                    "decodes the point under the pointer. A 2-D model's map is its whole latent space."
                )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):  # on a phone: before its controls
                        gr.HTML(elem_id="map", head=SCRIPT_TAG, js_on_load=f"vaeHubPage.liveMap(element, {live});")
                    with gr.Column(scale=1, min_width=260):
                        m_model = gr.Radio(choices, value=first, label="Model", elem_id="map_model")
                        with gr.Row():
                            m_x = gr.Dropdown(dims, value=0, label="Dimension →", visible=many, min_width=100)
                            m_y = gr.Dropdown(dims, value=1, label="Dimension ↑", visible=many, min_width=100)
                        m_z, m_code = codes("map", "not shown")
                controls = [m_model, m_x, m_y, *m_z]
                triggers = [m_tab.select, *(c.change for c in controls)]
                browser(triggers, controls, [], "(...v) => { vaeHubPage.showMap(...v); }")
                layout("map", m_model, m_x, m_y, m_z, m_code)
    return demo, endpoints

"""The vae-hub demo: upload or draw a digit, see both variants reconstruct it, browse the latent space.

    python app.py                                  # http://127.0.0.1:7860, the bundled weights, no network
    python app.py --model sgvb=USER/vae-mnist-sgvb --port 8080 --share

Every flag has an environment variable (see ``--help``); a Hugging Face Space runs this file as is.
The app's code is the ``webapp`` package beside this file (handlers, page, latent-map cache, output files).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

# No network unless asked for: Gradio would otherwise send usage analytics from every start.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from vae_hub import WeightsError  # noqa: E402
from vae_hub.hub import WEIGHTS_DIR  # noqa: E402
from vae_hub.preprocess import MAX_FILE_BYTES, MAX_PIXELS  # noqa: E402
from webapp import EXAMPLES_DIR, latent_map  # noqa: E402
from webapp.guard import harden  # noqa: E402
from webapp.handlers import VARIANTS, Handlers, load_models  # noqa: E402
from webapp.outputs import UPLOAD_CACHE_DELETE, prune_outputs, start_pruning  # noqa: E402
from webapp.ui import CSS, build  # noqa: E402

ROOT = Path(__file__).resolve().parent
DEFAULT_MODELS = {v: str(WEIGHTS_DIR / v) for v in VARIANTS}  # the bundled models (vae_hub.bundled_weights)
# VAE_HUB_SGVB, VAE_HUB_KL_WO_E, VAE_HUB_Z4_SGVB, VAE_HUB_Z4_KL_WO_E
ENV_MODELS = {v: "VAE_HUB_" + v.upper().replace("/", "_") for v in VARIANTS}
DEFAULT_CONCURRENCY = 2  # requests processed at once: one per CPU core of the target machine (see docs/app.md)

log = logging.getLogger("vae_hub.app")


def client_disconnected(exc: BaseException | None) -> bool:
    """Whether ``exc`` is (or wraps, in a chain or an exception group) a client closing its connection."""
    from starlette.requests import ClientDisconnect

    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ClientDisconnect):
            return True
        todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    return False


class DropClientDisconnect(logging.Filter):
    """Drop the ASGI server's traceback for a browser that closed during an upload (nothing went wrong on our side);
    every other error is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and client_disconnected(record.exc_info[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        description="Serve the vae-hub demo.", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
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
        help="weights for a model: a save_pretrained folder or a Hub repo id, e.g. sgvb=USER/vae-mnist-sgvb; "
        f"VARIANT is one of {', '.join(VARIANTS)} (env {', '.join(ENV_MODELS.values())}; default weights/VARIANT)",
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
    """Load the models and their latent maps, and build the app (not yet launched), with the input, concurrency and
    upload-cache rules of :mod:`webapp.guard` applied to every listener."""
    models = load_models(sources)
    maps = {name: latent_map.load_or_build(m, EXAMPLES_DIR, data_root) for name, m in models.items()}
    handlers = Handlers(models, maps)
    return harden(build(handlers), upload_cache=UPLOAD_CACHE_DELETE), handlers


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.concurrency < 1:
        raise SystemExit(f"--concurrency must be at least 1, got {args.concurrency}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per internal request is noise
    logging.getLogger("uvicorn.error").addFilter(DropClientDisconnect())  # where uvicorn logs "Exception in ASGI"
    torch.set_num_threads(1)  # tiny models: one thread per request, requests side by side, is fastest
    # Pillow refuses images above twice this many pixels before decoding them, wherever Gradio decodes an upload.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
    start = time.perf_counter()
    try:
        demo, _ = create(model_sources(args.model))
    except WeightsError as e:
        raise SystemExit(f"cannot load the weights: {e}") from None
    prune_outputs()
    start_pruning(demo)
    # All listeners share one concurrency group (webapp.guard), so this is the app's total, not a per-listener one.
    demo.queue(default_concurrency_limit=args.concurrency, max_size=256)
    log.info("ready in %.1f s; queue concurrency %d", time.perf_counter() - start, args.concurrency)
    demo.launch(
        quiet=True,  # our own line below says where it runs, without Gradio's `share=True` hint
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        css=CSS,
        max_file_size=MAX_FILE_BYTES,
        show_error=False,
        prevent_thread_lock=True,
    )
    log.info("serving on %s%s", demo.local_url, f" and {demo.share_url}" if demo.share_url else "")
    demo.block_thread()


if __name__ == "__main__":
    main()

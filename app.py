"""The vae-hub demo: draw, upload or pick a digit, see each model reconstruct it, browse the latent space.

    python app.py                                  # http://127.0.0.1:7860, the bundled weights, no network
    python app.py --model sgvb=USER/vae-mnist-sgvb --port 8080 --share

Every flag has an environment variable (see ``--help``); a Hugging Face Space runs this file as is. The code is in
``webapp/``; Gradio is configured through its public arguments only (``main``).
"""

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

# No network unless asked for: Gradio would otherwise send usage analytics from every start.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from webapp import VARIANTS, WEIGHTS_DIR, gate  # noqa: E402

ENV_MODELS = {v: "VAE_HUB_" + v.upper().replace("/", "_") for v in VARIANTS}  # VAE_HUB_SGVB, VAE_HUB_Z4_KL_WO_E, …
DEFAULT_CONCURRENCY = 2  # requests processed at once: one per CPU core of the target machine (see docs/app.md)
QUEUE_SIZE = 64  # requests waiting at most; beyond, a client is told the queue is full
MAX_STORED = 1024 * 2**20  # bytes the app's folder may hold (uploads)
ESTIMATORS = {"sgvb": "SGVB", "kl_wo_e": "KL w/o E"}  # a model's regularizer, as the page names it

log = logging.getLogger("vae_hub.app")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description="Serve the vae-hub demo.")

    def option(flag: str, envs: tuple[str, ...], default: Any, text: str, **kw: Any) -> None:
        """``flag``, its default the first of ``envs`` that is set, else ``default``; its help names them both."""
        value = next((env(e) for e in envs if env(e)), default)
        p.add_argument(flag, default=value, help=f"{text} (env {' or '.join(envs)}; default {default})", **kw)

    option("--host", ("VAE_HUB_HOST", "GRADIO_SERVER_NAME"), "127.0.0.1", "address to listen on, 0.0.0.0 for all")
    option("--port", ("VAE_HUB_PORT", "GRADIO_SERVER_PORT"), 7860, "port", type=int)
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
        help=f"weights for a model: a save_pretrained folder or a Hub repo id; VARIANT is one of "
        f"{', '.join(VARIANTS)} (env {', '.join(ENV_MODELS.values())}; default the bundled weights)",
    )
    option("--concurrency", ("VAE_HUB_CONCURRENCY",), DEFAULT_CONCURRENCY, "requests processed at once", type=int)
    sessions = "sessions Gradio keeps, the oldest going first; the app itself holds nothing per session"
    option("--sessions", ("VAE_HUB_SESSIONS",), 200, sessions, type=int)
    option("--keep-files", ("VAE_HUB_KEEP_FILES",), 1800, "how long an upload is kept", type=float, metavar="SECONDS")
    p.add_argument(
        "--tmp",
        default=env("VAE_HUB_TMP"),
        help="where the app creates its private folder (env VAE_HUB_TMP; default the system's)",
    )
    return p.parse_args(argv)


def model_sources(overrides: list[str]) -> dict[str, str]:
    """``--model VARIANT=SOURCE`` flags over the environment over the bundled weights."""
    sources = {v: os.environ.get(ENV_MODELS[v]) or str(WEIGHTS_DIR / v) for v in VARIANTS}
    for item in overrides:
        name, _, src = item.partition("=")
        if name not in VARIANTS or not src:  # no "=" leaves src empty
            raise SystemExit(f"--model wants VARIANT=DIR_OR_REPO with VARIANT in {list(VARIANTS)}, got {item!r}")
        sources[name] = src
    return sources


def title(variant: str, source: str, latent_dim: int) -> str:
    """What a person reads for a model: its latent size and KL estimator (from its ``training_args.json``), and,
    for weights other than the bundled ones, where they come from (a repo id or a folder's name, never a path)."""
    folder = Path(source)
    try:
        from huggingface_hub import hf_hub_download

        found = folder / "training_args.json" if folder.is_dir() else hf_hub_download(source, "training_args.json")
        regularizer = json.loads(Path(found).read_text()).get("regularizer")
    except Exception:  # a model saved without its training settings: say so instead of guessing
        regularizer = None
    text = f"{latent_dim}-D · {ESTIMATORS.get(regularizer, 'estimator unknown')}"
    name = "".join(ch for ch in (folder.name if folder.is_dir() else source) if ch.isalnum() or ch in "-_./")
    return text if source == str(WEIGHTS_DIR / variant) else f"{text} · custom: {name[:40]}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if min(args.concurrency, args.sessions) < 1 or not 0 < args.keep_files < 10**7:
        raise SystemExit("--concurrency and --sessions must be at least 1, and --keep-files positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per internal request is noise
    start = time.perf_counter()

    # Everything the server writes (Gradio's uploads included) goes into a fresh folder only this user can enter,
    # pruned while the app runs and removed when it stops. Set before Gradio is imported: it reads it then, too.
    folder = gate.private_folder(args.tmp)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopping runs the clean-up below
    try:
        import torch
        from starlette.middleware import Middleware

        from vae_hub import WeightsError
        from vae_hub.preprocess import MAX_FILE_BYTES
        from webapp import latent_map, ui
        from webapp.handlers import Handlers, load_models
        from webapp.static import live

        torch.set_num_threads(1)  # tiny models: one thread per request, requests side by side, is fastest
        sources = model_sources(args.model)
        try:
            models = load_models(sources)
        except WeightsError as e:
            raise SystemExit(f"cannot load the weights: {e}") from None
        titles = {name: title(name, sources[name], m.latent_dim) for name, m in models.items()}
        uploads = gate.Uploads(folder, args.keep_files)
        maps = {name: latent_map.load_or_build(m) for name, m in models.items()}
        handlers = Handlers(models, titles, uploads)
        demo, endpoints = ui.build(handlers, live.manifest(models), {name: m.source for name, m in maps.items()})
        gate.start_pruning(folder, args.keep_files, every_s=min(30.0, args.keep_files / 2), max_bytes=MAX_STORED)
        demo.queue(default_concurrency_limit=args.concurrency, max_size=QUEUE_SIZE, api_open=False)
        files = live.files(models, sources, maps)  # what the page's decoder fetches, and only that
        guard = Middleware(
            gate.Gate, endpoints=endpoints, uploads=uploads, max_upload=MAX_FILE_BYTES + 2**16, files=files
        )
        log.info("ready in %.1f s; queue concurrency %d", time.perf_counter() - start, args.concurrency)
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            quiet=True,
            prevent_thread_lock=True,
            css=ui.CSS,
            head=f"<script>{ui.JS}</script>",
            footer_links=["api"],
            pwa=False,
            ssr_mode=False,
            run_history=False,  # on by default in Gradio 6: it would store runs with the owner's Hub token
            enable_monitoring=False,
            mcp_server=False,
            show_error=False,  # only the app's own messages (gr.Error) reach a client, never an exception's text
            max_file_size=MAX_FILE_BYTES,
            state_session_capacity=args.sessions,
            max_threads=args.concurrency + 4,
            app_kwargs={"middleware": [guard]},
        )
        log.info("serving on %s%s", demo.local_url, f" and {demo.share_url}" if demo.share_url else "")
        demo.block_thread()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

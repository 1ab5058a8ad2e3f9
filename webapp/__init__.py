"""The vae-hub demo app (Gradio), next to ``app.py`` and outside the library: :mod:`~webapp.handlers` (the work
behind each endpoint, no Gradio), :mod:`~webapp.latent_map` (the map's caches), :mod:`~webapp.gate` (the server's
front door), :mod:`~webapp.ui` (the page), :mod:`~webapp.static` (what runs in the page) and :mod:`~webapp.space`
(deploy as a Hugging Face Space).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"  # MNIST test digits shipped with the app, named <label>_<index>.png
WEIGHTS_DIR = ROOT / "weights"  # the bundled models, one save_pretrained folder per variant
VARIANTS = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")  # the 2-D pair first; a name ends with its regularizer

"""The vae-hub demo app (Gradio): everything that is app code, next to ``app.py`` and outside the library.

- :mod:`webapp.handlers`: the work behind each endpoint, plain functions of images and numbers (no Gradio);
- :mod:`webapp.latent_map`: the latent map's cache (shipped for the bundled weights, a user cache for others);
- :mod:`webapp.gate`: the server's front door: routes, endpoints, bodies, uploads, the app's private folder, and the
  files of the page's decoder;
- :mod:`webapp.ui`: the Gradio page, wired to the handlers;
- :mod:`webapp.static`: the decoder, latent map and grid that run in the page (``vaehub.js``), and what they fetch;
- :mod:`webapp.space`: deploy the app as a Hugging Face Space.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"  # MNIST test digits shipped with the app, named <label>_<index>.png
WEIGHTS_DIR = ROOT / "weights"  # the bundled models, one save_pretrained folder per variant
VARIANTS = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")  # the 2-D pair first; a name ends with its regularizer

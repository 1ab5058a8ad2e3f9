"""The vae-hub demo app (Gradio): everything that is app code, next to ``app.py`` and outside the library.

- :mod:`webapp.handlers`: the event handlers, plain functions of images and numbers (no Gradio);
- :mod:`webapp.latent_map`: the latent map's cache (shipped for the bundled weights, a user cache for others);
- :mod:`webapp.outputs`: the images sent back, written as PNG files;
- :mod:`webapp.ui`: the Gradio page, wired to the handlers.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"  # MNIST test digits shipped with the app, named <label>_<index>.png

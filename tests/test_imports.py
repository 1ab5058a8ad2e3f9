"""The library's import in a fresh interpreter: lazy, without the app, and without side effects. A separate process
costs a torch import, so this lives outside the unit layer."""

import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_library_imports_lazily_without_gradio_and_changes_no_global_state() -> None:
    """`import vae_hub.config` costs no torch; the whole library imports no Gradio or pyplot, switches no
    matplotlib backend and leaves the environment, torch's threads and Pillow's size limit as they were."""
    probe = (
        "import os, sys; import vae_hub, vae_hub.config; assert 'torch' not in sys.modules, 'torch'; "
        "import torch, PIL.Image, matplotlib; env = dict(os.environ); cap = PIL.Image.MAX_IMAGE_PIXELS; "
        "threads = torch.get_num_threads(); backend = matplotlib.rcParams._get_backend_or_none(); "
        "import vae_hub.model, vae_hub.viz, vae_hub.preprocess, vae_hub.hub, vae_hub.objectives, vae_hub.fast, "
        "vae_hub.data; from vae_hub import VAE; "
        "assert 'gradio' not in sys.modules and 'matplotlib.pyplot' not in sys.modules, 'imported'; "
        "assert dict(os.environ) == env and PIL.Image.MAX_IMAGE_PIXELS == cap, 'globals'; "
        "assert torch.get_num_threads() == threads, 'threads'; "
        "assert matplotlib.rcParams._get_backend_or_none() == backend, 'backend'"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

"""Start ``app.py`` in a subprocess on a free port, for the HTTP, browser and load tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, require

if str(ROOT) not in sys.path:  # `import app` in the tests, under a plain `pytest` as well as `python -m pytest`
    sys.path.insert(0, str(ROOT))
BUNDLED = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")

# The weights the app serves: the bundled ones, or a folder laid out like weights/ (for work in progress).
WEIGHTS = Path(os.environ.get("VAE_HUB_TEST_WEIGHTS") or ROOT / "weights")
VARIANTS = BUNDLED  # the four bundled models, as the app serves them


def weights_present() -> bool:
    return all((WEIGHTS / v / "model.safetensors").is_file() for v in VARIANTS)


@contextmanager
def serve(*args: str, **kwargs: Any) -> Iterator[str]:
    """:func:`webapp.launch.serve`, pointed at ``$VAE_HUB_TEST_WEIGHTS`` when that is set, and silent when
    ``$VAE_HUB_QUIET_APP`` is."""
    if os.environ.get("VAE_HUB_TEST_WEIGHTS"):
        args = (*args, *(f"--model={v}={WEIGHTS / v}" for v in VARIANTS))
    kwargs.setdefault("quiet", bool(os.environ.get("VAE_HUB_QUIET_APP")))
    from webapp import launch

    with launch.serve(*args, **kwargs) as url:
        yield url


@pytest.fixture(scope="session")
def app_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's app server writes its output (stdout and stderr)."""
    return tmp_path_factory.mktemp("app") / "app.log"


@pytest.fixture(scope="session")
def app_url(app_log: Path) -> Iterator[str]:
    """One app server (the bundled models) for the whole test session: the HTTP and the browser tests share it.

    conftest.py registers this module as a plugin, so every module gets the same server. Its output goes to
    ``app_log``.
    """
    require(weights_present(), f"the bundled weights in {WEIGHTS}")
    with serve(log_path=app_log) as url:
        yield url

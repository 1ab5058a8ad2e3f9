"""``python -m webapp.space``: the staged Space holds regular files from inside the checkout only; a symlink (to
``/proc/self/environ``, or to a file outside), a linked folder or a fifo is refused by name, and nothing is staged."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, require

from webapp import space

pytestmark = pytest.mark.slow  # each copies the checkout's deployable files and loads the four models
SECRET = "HF_TOKEN=hf_secret_that_must_not_ship"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what a deploy reads from the repository."""
    require((ROOT / "weights" / "sgvb" / "model.safetensors").is_file(), "the bundled weights in weights/")
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("app.py", "LICENSE", "requirements.txt", "pyproject.toml"):
        shutil.copyfile(ROOT / name, root / name)
    for name in ("vae_hub", "webapp", "weights", "examples", "assets"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def dry_run(root: Path, out: Path, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = space.main(["alice/demo", "--dry-run", "--out", str(out), "--root", str(root)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_dry_run_stages_regular_files_byte_for_byte(checkout: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network at all
    out = tmp_path / "space"
    code, text, err = dry_run(checkout, out, capsys)
    assert code == 0, err
    staged = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"app.py", "LICENSE", "README.md", "requirements.txt", "webapp/page.js", "webapp/ui.py"} <= staged
    assert {f"weights/{v}/model.safetensors" for v in ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")} <= staged
    assert not any(p.is_symlink() for p in out.rglob("*"))
    for rel in staged - {"README.md", "requirements.txt"}:
        assert (out / rel).read_bytes() == (checkout / rel).read_bytes(), rel
    readme = (out / "README.md").read_text()
    assert "sdk: gradio" in readme and "app_file: app.py" in readme
    assert "gradio" not in (out / "requirements.txt").read_text()  # the Space's sdk_version installs it


def link(path: Path, target: Path | str) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(target)


@pytest.mark.parametrize(
    "rel, make",
    [
        ("weights/sgvb/samples.png", lambda p, secret: link(p, "/proc/self/environ")),  # a figure beside the weights
        ("examples/9_9999.png", link),
        ("webapp/extra", lambda p, secret: link(p, secret.parent)),
        ("assets/latent_map/pipe", lambda p, secret: os.mkfifo(p)),
        ("weights/kl_wo_e/config.json", link),
    ],
)
def test_anything_but_a_regular_file_is_refused_by_name(checkout: Path, tmp_path: Path, capsys, rel: str, make) -> None:
    secret = tmp_path / "secret.env"
    secret.write_text(SECRET)
    make(checkout / rel, secret)
    out = tmp_path / "space"
    code, text, err = dry_run(checkout, out, capsys)
    assert code == 2 and err.count("\n") == 1, err  # one line, exit code 2: bad input
    assert str(checkout / rel) in err and ("symlink" in err or "not a regular file" in err), err
    assert SECRET not in text + err and (not out.exists() or not any(out.rglob("*")))

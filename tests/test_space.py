"""``python -m webapp.space``: the staged Space holds regular files from inside the checkout only (a symlink to
``/proc/self/environ`` or outside, a linked folder or a fifo is refused by name, and nothing is staged); a deploy
makes the Space exactly the staged folder, read back with the real client from the local Hub stand-in; the staged
folder alone serves the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TOKEN, require

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
    served = {f"weights/{v}/{n}" for v in ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e") for n in space.WEIGHT_FILES}
    assert {p for p in staged if p.startswith("weights/")} == served  # not the binarized pair the app never loads
    assert "note:" not in text.replace("note: no token", ""), text  # every served model has its map cache
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


# --- deploying to the Hub (the local stand-in, with the real client) ---

SPACE = "alice/vae-demo"
MODELS = ["alice/vae-mnist-sgvb", "alice/vae-mnist-kl-wo-e"]


def deploy(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = space.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_deploy_is_exactly_the_staged_folder_read_back_with_the_client(hub_env, tmp_path: Path, capsys) -> None:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    staged = tmp_path / "staged"
    assert deploy(capsys, SPACE, "--dry-run", "--out", staged, "--models", *MODELS)[0] == 0
    expected = files_under(staged)
    assert {"app.py", "vae_hub/model.py", "weights/sgvb/model.safetensors", "README.md"} <= set(expected)
    code, out, err = deploy(capsys, SPACE, "--models", *MODELS, "--token", TOKEN)
    assert code == 0, err
    assert f"deployed to {hub_env.url}/spaces/{SPACE}" in out and TOKEN not in out + err
    api = HfApi(endpoint=hub_env.url)  # anonymous: the Space is public
    assert sorted(api.list_repo_files(SPACE, repo_type="space")) == sorted({*expected, ".gitattributes"})
    assert api.space_info(SPACE).sdk == "gradio"
    for rel in ("app.py", "weights/sgvb/model.safetensors", "README.md"):
        path = hf_hub_download(SPACE, rel, repo_type="space", cache_dir=tmp_path / "cache")
        assert Path(path).read_bytes() == expected[rel], rel
    with pytest.raises(RepositoryNotFoundError):  # a Space, not a model
        api.model_info(SPACE)
    # a redeploy makes the Space exactly the staged folder again: a stale file goes
    owner = HfApi(endpoint=hub_env.url, token=TOKEN)
    owner.upload_file(path_or_fileobj=b"x = 1\n", path_in_repo="vae_hub/old.py", repo_id=SPACE, repo_type="space")
    assert deploy(capsys, SPACE, "--models", *MODELS, "--token", TOKEN)[0] == 0
    assert sorted(api.list_repo_files(SPACE, repo_type="space")) == sorted({*expected, ".gitattributes"})
    assert deploy(capsys, "alice/private-demo", "--private", "--token", TOKEN)[0] == 0  # hidden from everyone else
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_files("alice/private-demo", repo_type="space")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-namespace"], "bad repo id 'no-namespace'"),
        ([SPACE, "--models", "alice/ok", "bad model"], "bad repo id 'bad model'"),
        ([SPACE, "--out", "somewhere"], "--out only goes with --dry-run"),
        ([SPACE], "no Hugging Face token: run `hf auth login`"),
        ([SPACE, "--dry-run", "--root", "EMPTY"], "has no app.py"),
    ],
)
def test_deploy_errors_are_one_line_and_send_nothing(args, message, hub_env, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    before = len(hub_env.requests())
    code, out, err = deploy(capsys, *[str(tmp_path / "empty") if a == "EMPTY" else a for a in args])
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert len(hub_env.requests()) == before


def test_hub_refusals_exit_1_and_never_show_the_token(hub_env, capsys) -> None:
    code, _, err = deploy(capsys, SPACE, "--token", "hf_wrong_token_secret")
    assert code == 1 and "the token was rejected" in err and "hf_wrong_token_secret" not in err
    code, _, err = deploy(capsys, "bob/demo", "--token", TOKEN)  # not alice's namespace
    assert code == 1 and "namespace" in err and TOKEN not in err


def test_the_staged_space_serves_without_the_repository(tmp_path: Path, capsys, monkeypatch) -> None:
    """The staged folder alone runs the demo: app.py imports only what was staged (not the checkout, nor an
    installed vae-hub), loads the staged weights and answers a real request."""
    from app_server import call, serve
    from test_app import EXAMPLE, data_url, images

    staged = tmp_path / "space"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert deploy(capsys, SPACE, "--dry-run", "--out", staged)[0] == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VAE_HUB_") and k != "PYTHONPATH"}
    probe = "import importlib, sys; print(*(importlib.import_module(p).__file__ for p in sys.argv[1:]))"
    where = subprocess.run(
        [sys.executable, "-c", probe, *space.PACKAGES],
        cwd=staged,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert all(Path(f).resolve().is_relative_to(staged.resolve()) for f in where.stdout.split()), where.stdout
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("VAE_HUB_") or k == "PYTHONPATH"}
    with serve(env=env, app_dir=staged) as url:
        event, out = call(url, "reconstruct", data_url(EXAMPLE))
        assert event == "complete" and len(images(out[0])) == 5, out

"""Publishing to and loading from the Hub, for real: the real ``huggingface_hub`` client talks HTTP to a local
Hub-compatible endpoint (:mod:`tests.hub_server`, standing in for huggingface.co) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml
from app_server import serve
from conftest import require
from hub_server import HubServer  # tests/ is on sys.path under pytest
from huggingface_hub import HfApi, ModelCard, constants, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError

from training import space
from training.push import main as push_main
from training.space import main as space_main
from training.train import train_variant
from vae_hub import VAE, Config, WeightsError, bundled_weights

ROOT = Path(__file__).resolve().parent.parent
TOKEN, OTHER_TOKEN = "hf_alice_write_token_0123456789", "hf_bob_token_9876543210"
HUB_FILES = {".gitattributes", "config.json", "model.safetensors", "README.md"}


@pytest.fixture(scope="module")
def hub():
    with HubServer({TOKEN: "alice", OTHER_TOKEN: "bob"}) as server:
        yield server


@pytest.fixture
def hub_env(hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    """Point the in-process client at the local hub, with an empty HF home and cache and no token anywhere."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # huggingface_hub.constants read these at import time; hf_hub_url and get_token read the constants per call.
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return hub


def _model(seed: int) -> VAE:
    torch.manual_seed(seed)
    return VAE(Config(hidden_dims=[32, 8, 2])).eval()


def _saved(model: VAE, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mnist_test) -> Path:
    """A real training run's folder (a few steps on real MNIST): weights, metrics, figures, model card."""
    images, labels = mnist_test
    data = {"train": (images[:512], labels[:512]), "test": (images[512:768], labels[512:768])}
    out = tmp_path_factory.mktemp("weights")
    config = Config(epochs=1, batch_size=128, device="cpu", regularizer="sgvb")
    train_variant("sgvb", config, data, out, out / "ckpt", resume=False, progress=False)
    return out / "sgvb"


def assert_identical(a: VAE, b: VAE) -> None:
    """Same tensors bit for bit, and so the same outputs bit for bit."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.rand(8, 784, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.reconstruct(x), b.reconstruct(x))
    assert torch.equal(a.sample(4, torch.Generator().manual_seed(2)), b.sample(4, torch.Generator().manual_seed(2)))
    out_a, out_b = a(x, torch.Generator().manual_seed(3)), b(x, torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(out_a, out_b))


def _push(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = push_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --- the full round trip, as a user runs it ---


def test_push_cli_then_load_is_bit_identical(trained: Path, hub_env: HubServer, tmp_path: Path) -> None:
    hub = hub_env
    home = tmp_path / "hf_home"
    home.mkdir()
    (home / "token").write_text(TOKEN)  # what `hf auth login` caches: no --token, no HF_TOKEN
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}  # no token, cache or mode from outside
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home), PYTHONPATH=str(ROOT), HF_HUB_DISABLE_PROGRESS_BARS="1")
    cmd = [sys.executable, "-m", "training.push", str(trained), "--repo-id", "alice/vae-mnist-sgvb"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert TOKEN not in r.stdout + r.stderr
    assert 'VAE.from_pretrained("alice/vae-mnist-sgvb")' in r.stdout

    repo = hub.state.repos["alice/vae-mnist-sgvb"]
    files = repo.commits[repo.branches["main"]]
    figures = {"samples.png", "reconstructions.png", "latent.png", "latent_means.png", "curves.png"}
    assert set(files) == HUB_FILES | {"metrics.json", "training_args.json"} | figures
    assert files["model.safetensors"] == (trained / "model.safetensors").read_bytes()

    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "vae-hub" and card.data.license == "cc-by-sa-3.0"
    assert card.data.datasets == ["mnist"] and "sgvb" in card.data.tags
    test_nelbo = json.loads(files["metrics.json"])["history"][-1]["test_nelbo"]
    assert card.data.eval_results[0].metric_value == pytest.approx(test_nelbo, abs=1e-3)
    assert "SGVB" in card.text and "KL-WO-E" in card.text  # the two regularizers
    assert "![samples](samples.png)" in card.text and "![reconstructions](reconstructions.png)" in card.text
    assert 'VAE.from_pretrained("alice/vae-mnist-sgvb")' in card.text

    cache = tmp_path / "fresh_cache"
    loaded = VAE.from_pretrained("alice/vae-mnist-sgvb", cache_dir=cache)
    assert_identical(loaded, VAE.from_pretrained(trained))
    assert any(cache.rglob("model.safetensors"))


def test_private_repo_is_hidden_from_others(hub_env: HubServer, tmp_path: Path, capsys, monkeypatch) -> None:
    folder = _saved(_model(1), tmp_path / "w")
    code, out, err = _push(capsys, folder, "--repo-id", "alice/private-vae", "--private", "--token", TOKEN)
    assert code == 0, err
    assert hub_env.state.repos["alice/private-vae"].private
    for token in (None, OTHER_TOKEN):  # anonymous, and another user
        with pytest.raises(WeightsError, match="read as a Hub repo id, it does not exist or is private"):
            VAE.from_pretrained("alice/private-vae", cache_dir=tmp_path / "c1", token=token)
    assert_identical(VAE.from_pretrained("alice/private-vae", cache_dir=tmp_path / "c2", token=TOKEN), _model(1))
    # HF_TOKEN is picked up by both the push and the download
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert _push(capsys, folder, "--repo-id", "alice/private-2", "--private")[0] == 0
    assert_identical(VAE.from_pretrained("alice/private-2", cache_dir=tmp_path / "c3"), _model(1))


def test_second_push_to_a_new_revision(hub_env: HubServer, tmp_path: Path, capsys) -> None:
    first, second = _model(1), _model(2)
    assert _push(capsys, _saved(first, tmp_path / "a"), "--repo-id", "alice/vae-rev", "--token", TOKEN)[0] == 0
    code, out, err = _push(
        capsys, _saved(second, tmp_path / "b"), "--repo-id", "alice/vae-rev", "--branch", "v2", "--token", TOKEN
    )
    assert code == 0, err
    assert 'revision="v2"' in out
    cache = tmp_path / "cache"
    assert_identical(VAE.from_pretrained("alice/vae-rev", revision="v2", cache_dir=cache), second)
    assert_identical(VAE.from_pretrained("alice/vae-rev", revision="main", cache_dir=cache), first)
    assert_identical(VAE.from_pretrained("alice/vae-rev", cache_dir=cache), first)
    # pushing again to the now existing branch works too; an unknown revision is a clear error
    assert _push(capsys, tmp_path / "a", "--repo-id", "alice/vae-rev", "--revision", "v2", "--token", TOKEN)[0] == 0
    assert_identical(VAE.from_pretrained("alice/vae-rev", revision="v2", cache_dir=tmp_path / "c2"), first)
    with pytest.raises(WeightsError, match="revision 'v3' does not exist"):
        VAE.from_pretrained("alice/vae-rev", revision="v3", cache_dir=cache)


def test_local_files_only_after_caching(tmp_path: Path, hub_env: HubServer, monkeypatch) -> None:
    model, cache = _model(3), tmp_path / "cache"
    with HubServer({TOKEN: "alice"}) as transient:  # a hub that goes away after the download
        monkeypatch.setattr(constants, "ENDPOINT", transient.url)
        url_template = transient.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url_template)
        model.push_to_hub("alice/cached", token=TOKEN)  # the mixin's own push_to_hub, too
        assert_identical(VAE.from_pretrained("alice/cached", cache_dir=cache), model)
    with pytest.raises(WeightsError, match="not in the local cache"):
        VAE.from_pretrained("alice/cached", cache_dir=tmp_path / "empty", local_files_only=True)
    assert_identical(VAE.from_pretrained("alice/cached", cache_dir=cache, local_files_only=True), model)
    assert_identical(
        VAE.from_pretrained("alice/cached", revision="main", cache_dir=cache, local_files_only=True), model
    )


def test_pickle_only_repo_is_refused_without_downloading_it(hub_env: HubServer, tmp_path: Path) -> None:
    folder = _saved(_model(4), tmp_path / "w")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")  # never read: only its name matters
    api = HfApi(endpoint=hub_env.url, token=TOKEN)
    api.create_repo("alice/pickled")
    api.upload_folder(repo_id="alice/pickled", folder_path=folder)
    with pytest.raises(WeightsError, match="pytorch_model.bin, a pickle file, which is refused"):
        VAE.from_pretrained("alice/pickled", cache_dir=tmp_path / "cache")
    assert not [p for p in hub_env.requests("GET") if p.endswith(".bin")]
    assert not list((tmp_path / "cache").rglob("*.bin"))


# --- dry run and clear errors ---


def test_dry_run_writes_the_exact_upload_folder(trained: Path, hub_env: HubServer, tmp_path: Path, capsys) -> None:
    before = len(hub_env.requests())
    trained = Path(shutil.copytree(trained, tmp_path / "sgvb"))
    (trained / "optimizer.ckpt").write_bytes(b"not uploaded")  # stray files stay home
    out_dir = tmp_path / "staged"
    code, out, err = _push(capsys, trained, "--repo-id", "alice/dry", "--dry-run", "--out", out_dir)
    assert code == 0, err
    assert len(hub_env.requests()) == before  # no network at all, and no token needed
    assert "no token found" in out
    staged = {p.name: p.stat().st_size for p in out_dir.iterdir()}
    assert set(staged) == {"config.json", "model.safetensors", "README.md", "metrics.json", "training_args.json"} | {
        "samples.png",
        "reconstructions.png",
        "latent.png",
        "latent_means.png",
        "curves.png",
    }
    for name, size in staged.items():
        assert f"{size:>10,d}  {name}" in out
    assert (out_dir / "model.safetensors").read_bytes() == (trained / "model.safetensors").read_bytes()
    assert 'VAE.from_pretrained("alice/dry")' in (out_dir / "README.md").read_text()
    # without --out it stages into a new temporary folder and says where
    code, out, _ = _push(capsys, trained, "--repo-id", "alice/dry", "--dry-run")
    tmp_dir = Path(out.split(" would upload ")[1].split(" to ")[0])
    assert code == 0 and (tmp_dir / "README.md").is_file()
    # an --out that already holds files is refused rather than mixed into
    assert _push(capsys, trained, "--repo-id", "alice/dry", "--dry-run", "--out", out_dir)[0] == 2


def _broken(kind: str, folder: Path) -> Path:
    if kind == "missing folder":
        return folder / "nope"
    _saved(_model(5), folder)
    if kind == "no safetensors":
        (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    elif kind == "corrupt safetensors":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif kind == "not a folder":
        return folder / "config.json"
    return folder


@pytest.mark.parametrize(
    ("kind", "args", "message"),
    [
        ("missing folder", [], "no such folder"),
        ("not a folder", [], "is not a folder"),
        ("no safetensors", [], "has no model.safetensors (pytorch_model.bin is a pickle file"),
        ("corrupt safetensors", [], "does not load, so it is not pushed"),
        ("ok", ["--repo-id", "no-namespace"], "bad repo id 'no-namespace': expected USER/NAME"),
        ("ok", ["--repo-id", "a/b/c"], "bad repo id 'a/b/c'"),
        ("ok", ["--repo-id", "alice/bad name!"], "bad repo id 'alice/bad name!'"),
        ("ok", ["--repo-id", "alice/x--y"], "bad repo id"),
        ("ok", [], "no Hugging Face token: run `hf auth login`"),
    ],
)
def test_user_errors_are_one_line_exit_2(kind, args, message, hub_env: HubServer, tmp_path: Path, capsys) -> None:
    before = len(hub_env.requests())
    argv = [_broken(kind, tmp_path / "w"), *(args or ["--repo-id", "alice/x"])]
    code, out, err = _push(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert len(hub_env.requests()) == before  # nothing was sent


def test_hub_refusals_are_clear_and_never_show_the_token(hub_env, tmp_path: Path, capsys, monkeypatch) -> None:
    folder = _saved(_model(6), tmp_path / "w")
    code, _, err = _push(capsys, folder, "--repo-id", "alice/x", "--token", "hf_wrong_token_secret")
    assert code == 1 and "rejected the token" in err and "hf_wrong_token_secret" not in err
    code, _, err = _push(capsys, folder, "--repo-id", "bob/x", "--token", TOKEN)  # not alice's namespace
    assert code == 1 and "refused" in err and "namespace" in err and TOKEN not in err
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    code, _, err = _push(capsys, folder, "--repo-id", "alice/x", "--token", TOKEN)
    assert code == 1 and "could not reach the Hub at http://127.0.0.1:9" in err and TOKEN not in err


# --- the Gradio app loads from the Hub too ---


def test_the_app_loads_its_models_from_the_hub(hub_env: HubServer, tmp_path: Path, capsys) -> None:
    import app  # imported here: it pulls in Gradio
    from webapp.handlers import load_models

    pushed = {"sgvb": _model(7), "kl_wo_e": _model(8)}
    for variant, model in pushed.items():
        folder = _saved(model, tmp_path / variant)
        assert _push(capsys, folder, "--repo-id", f"alice/app-{variant}", "--token", TOKEN)[0] == 0
    # what `python app.py --model sgvb=alice/app-sgvb --model kl_wo_e=alice/app-kl_wo_e` loads
    sources = app.model_sources([f"{v}=alice/app-{v}" for v in pushed])
    for loaded in (load_models(sources), load_models(sources, local_files_only=True)):
        for variant, model in pushed.items():
            assert_identical(loaded[variant], model)
    with pytest.raises(
        SystemExit, match="cannot load the weights: .alice/nothing-here. is not a local folder .* does not exist"
    ):
        app.main(["--model", "sgvb=alice/nothing-here"])


# --- loading is strict about its arguments and quick about names that are neither a folder nor a repo ---


def test_from_pretrained_refuses_unknown_keyword_arguments(tmp_path: Path) -> None:
    folder = _saved(_model(8), tmp_path / "w")
    for typo in ({"local_file_only": True}, {"revison": "v2"}, {"strict": False}):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            VAE.from_pretrained(folder, **typo)


def test_a_missing_path_is_explained_quickly(hub_env: HubServer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("weights/sgvd", "sgvd"):  # a typo, and a folder that exists only in another working directory
        t0 = time.perf_counter()
        with pytest.raises(WeightsError) as info:
            VAE.from_pretrained(name)
        message = str(info.value)
        assert time.perf_counter() - t0 < 5
        assert str(tmp_path / name) in message and f"resolved against {tmp_path}" in message
        assert "read as a Hub repo id, it does not exist" in message


def test_an_unreachable_hub_fails_fast_and_falls_back_to_the_cache(hub_env: HubServer, tmp_path: Path, monkeypatch):
    model, cache = _model(9), tmp_path / "cache"
    model.push_to_hub("alice/offline", token=TOKEN)
    assert_identical(VAE.from_pretrained("alice/offline", cache_dir=cache), model)
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    t0 = time.perf_counter()
    assert_identical(VAE.from_pretrained("alice/offline", cache_dir=cache), model)  # the cached copy
    with pytest.raises(WeightsError, match=r"not in the local cache \(the Hub could not be reached"):
        VAE.from_pretrained("alice/never-cached", cache_dir=cache)
    assert time.perf_counter() - t0 < 5  # hf_hub_download alone retries a dead network for ~30 s


def test_bundled_weights_load_from_any_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e"):
        model = VAE.from_pretrained(bundled_weights(name))
        assert model.latent_dim == (4 if name.startswith("z4") else 2)
    with pytest.raises(WeightsError, match="unknown bundled model 'z3'"):
        bundled_weights("z3")


# --- the demo as a Space ---

SPACE = "alice/vae-demo"
MODELS = ["alice/vae-mnist-sgvb", "alice/vae-mnist-kl-wo-e"]
NOT_SHIPPED = ("__pycache__", ".pyc", ".venv", ".ckpt", ".bin", ".pt", "metrics.json", "curves.png", "training/")


def _space(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = space_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def bundled() -> Path:
    """The repository's own weights folders: what a real deploy ships."""
    folders = [ROOT / "weights" / v for v in ("sgvb", "kl_wo_e")]
    require(all((f / "model.safetensors").is_file() for f in folders), "the bundled weights in weights/")
    return ROOT


@pytest.fixture
def checkout(bundled: Path, tmp_path: Path) -> Path:
    """A copy of the files a deploy reads, with the junk a working checkout accumulates, and a second,
    nested weights folder (as weights/z4/sgvb will be)."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("app.py", "LICENSE", "requirements.txt", "pyproject.toml"):
        shutil.copyfile(ROOT / name, root / name)
    for name in (*[p for p in space.PACKAGES if (ROOT / p).is_dir()], "weights", "examples", "assets", "training"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    if not (root / "webapp").is_dir():  # the app package that app.py will import: shipped once it exists
        (root / "webapp").mkdir()
        (root / "webapp" / "__init__.py").write_text('"""The app."""\n')
        (root / "webapp" / "ui.py").write_text("TITLE = 'vae-hub'\n")
    _saved(_model(11), root / "weights" / "z4" / "sgvb")
    junk = [
        "vae_hub/__pycache__/model.cpython-311.pyc",
        "webapp/__pycache__/ui.cpython-311.pyc",
        "vae_hub/stray.pyc",
        ".venv/lib/python3.11/site-packages/gradio/__init__.py",
        "weights/sgvb/optimizer.ckpt",
        "weights/sgvb/pytorch_model.bin",
        "weights/kl_wo_e/model.pt",
        "assets/.DS_Store",
        "examples/.ipynb_checkpoints/0_0003-checkpoint.png",
    ]
    for rel in junk:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"junk")
    return root


def _front_matter(readme: str) -> dict:
    head, sep, _ = readme.removeprefix("---\n").partition("\n---\n")
    assert readme.startswith("---\n") and sep, "README.md must open with a YAML front matter block"
    return yaml.safe_load(head)


def test_space_dry_run_stages_exactly_what_the_space_runs(checkout: Path, hub_env, tmp_path: Path, capsys) -> None:
    before = len(hub_env.requests())
    out_dir = tmp_path / "space"
    code, out, err = _space(capsys, SPACE, "--dry-run", "--out", out_dir, "--root", checkout, "--models", *MODELS)
    assert code == 0, err
    assert len(hub_env.requests()) == before  # no network at all, and no token needed
    assert f"would upload {out_dir} to {hub_env.url}/spaces/{SPACE}" in out and "no token found" in out

    py = {p.relative_to(checkout).as_posix() for pkg in ("vae_hub", "webapp") for p in (checkout / pkg).rglob("*.py")}
    bundled = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")
    weights = [f"weights/{v}/{n}" for v in bundled for n in ("config.json", "model.safetensors")]
    examples = {f"examples/{p.name}" for p in (ROOT / "examples").glob("*.png")}
    maps = {f"assets/latent_map/{p.name}" for p in (ROOT / "assets" / "latent_map").glob("*.safetensors")}
    expected = {"app.py", "LICENSE", "README.md", "requirements.txt", *py, *weights, *examples, *maps}
    staged = _files_under(out_dir)
    assert set(staged) == expected
    assert len(examples) >= 10 and maps and "webapp/ui.py" in staged
    for rel, data in staged.items():  # listed with its size; copied files are byte for byte the checkout's
        assert f"{len(data):>10,d}  {rel}" in out
        assert not any(bad in rel for bad in NOT_SHIPPED), rel
        if rel not in ("README.md", "requirements.txt"):
            assert data == (checkout / rel).read_bytes(), rel
    assert f"{sum(map(len, staged.values())):>10,d}  total bytes, {len(staged)} files" in out
    # weights/z4/sgvb has no shipped latent-map cache: said, not silently served without one
    assert "no latent-map cache for weights/z4/sgvb" in out and "for weights/sgvb " not in out

    # requirements.txt: the package's runtime dependencies at the checkout's pins; no Gradio (the SDK brings it at
    # sdk_version), no test tools
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    requirements = (out_dir / "requirements.txt").read_text().splitlines()
    assert f"torch=={pins['torch']}" in requirements and f"torchvision=={pins['torchvision']}" in requirements
    names = {re.split(r"[<>=!~ ;\[]", line)[0].lower() for line in requirements}
    assert {"torch", "torchvision", "huggingface-hub", "safetensors", "numpy", "pillow", "matplotlib"} <= names
    assert not names & {"gradio", "gradio_client", "gradio-client", "pytest", "playwright", "ruff", "pyyaml"}

    meta = _front_matter((out_dir / "README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pins["gradio"] and meta["app_file"] == "app.py"
    assert meta["python_version"] == "3.11"  # a string: unquoted, YAML would read the number 3.11
    assert meta["models"] == MODELS and meta["title"] and meta["emoji"] and meta["license"] == "other"
    assert len(meta["short_description"]) <= 60

    # no --models: an empty list; without --out a new temporary folder, said where; a used --out is refused
    code, out, _ = _space(capsys, SPACE, "--dry-run", "--root", checkout)
    tmp_dir = Path(out.split(" would upload ")[1].split(" to ")[0])
    assert code == 0 and _front_matter((tmp_dir / "README.md").read_text())["models"] == []
    assert _space(capsys, SPACE, "--dry-run", "--out", out_dir, "--root", checkout)[0] == 2


def test_space_push_then_read_back_with_the_client(bundled: Path, hub_env, tmp_path: Path, capsys) -> None:
    staged = tmp_path / "staged"
    assert _space(capsys, SPACE, "--dry-run", "--out", staged, "--models", *MODELS)[0] == 0
    expected = _files_under(staged)
    assert set(expected) >= {"app.py", "vae_hub/model.py", "weights/sgvb/model.safetensors", "README.md"}

    code, out, err = _space(capsys, SPACE, "--models", *MODELS, "--token", TOKEN)
    assert code == 0, err
    assert f"deployed to {hub_env.url}/spaces/{SPACE}" in out and f"commit: {hub_env.url}/spaces/{SPACE}/commit/" in out
    assert TOKEN not in out + err

    api = HfApi(endpoint=hub_env.url)  # anonymous: the Space is public
    assert sorted(api.list_repo_files(SPACE, repo_type="space")) == sorted({*expected, ".gitattributes"})
    assert api.space_info(SPACE).sdk == "gradio"
    for rel, data in expected.items():
        path = hf_hub_download(SPACE, rel, repo_type="space", cache_dir=tmp_path / "cache")
        assert Path(path).read_bytes() == data, rel
    # it is a Space, not a model: the model namespace is separate, and a model may share the name
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(SPACE)
    assert _push(capsys, _saved(_model(12), tmp_path / "m"), "--repo-id", SPACE, "--token", TOKEN)[0] == 0
    assert "app.py" not in api.list_repo_files(SPACE) and "app.py" in api.list_repo_files(SPACE, repo_type="space")

    # a redeploy makes the Space exactly the staged folder again: a stale file goes, .gitattributes stays
    owner = HfApi(endpoint=hub_env.url, token=TOKEN)
    owner.upload_file(path_or_fileobj=b"x = 1\n", path_in_repo="vae_hub/old.py", repo_id=SPACE, repo_type="space")
    assert "vae_hub/old.py" in api.list_repo_files(SPACE, repo_type="space")
    assert _space(capsys, SPACE, "--models", *MODELS, "--token", TOKEN)[0] == 0
    assert sorted(api.list_repo_files(SPACE, repo_type="space")) == sorted({*expected, ".gitattributes"})

    # --private: hidden from everyone but its owner
    assert _space(capsys, "alice/private-demo", "--private", "--token", TOKEN)[0] == 0
    assert hub_env.state.repos["spaces/alice/private-demo"].private
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_files("alice/private-demo", repo_type="space")
    assert "app.py" in owner.list_repo_files("alice/private-demo", repo_type="space")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-namespace"], "bad repo id 'no-namespace': expected USER/NAME"),
        (["a/b/c", "--dry-run"], "bad repo id 'a/b/c'"),
        ([SPACE, "--models", "alice/ok", "bad model"], "bad repo id 'bad model'"),
        ([SPACE, "--out", "somewhere"], "--out only goes with --dry-run"),
        ([SPACE], "no Hugging Face token: run `hf auth login`"),
        ([SPACE, "--dry-run", "--root", "EMPTY"], "has no app.py"),
        ([SPACE, "--dry-run", "--root", "NO_GRADIO_PIN"], "must pin gradio exactly"),
    ],
)
def test_space_user_errors_are_one_line_exit_2(args, message, checkout: Path, hub_env, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    pins = (checkout / "requirements.txt").read_text()
    (checkout / "requirements.txt").write_text(re.sub(r"(?m)^gradio==", "gradio>=", pins))
    roots = {"EMPTY": str(tmp_path / "empty"), "NO_GRADIO_PIN": str(checkout)}
    before = len(hub_env.requests())
    code, out, err = _space(capsys, *[roots.get(a, a) for a in args])
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert len(hub_env.requests()) == before  # nothing was sent


def test_space_hub_refusals_exit_1(bundled: Path, hub_env, capsys) -> None:
    code, _, err = _space(capsys, SPACE, "--token", "hf_wrong_token_secret")
    assert code == 1 and "rejected the token" in err and "hf_wrong_token_secret" not in err
    code, _, err = _space(capsys, "bob/demo", "--token", TOKEN)  # not alice's namespace
    assert code == 1 and "namespace" in err and TOKEN not in err


@pytest.mark.slow
def test_staged_space_serves_without_the_repository(bundled: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """The staged folder alone runs the demo: app.py imports only what was staged (not the checkout, nor an
    installed vae-hub), loads the staged weights and answers a real request."""
    from gradio_client import Client, handle_file

    staged = tmp_path / "space"
    assert _space(capsys, SPACE, "--dry-run", "--out", staged)[0] == 0
    monkeypatch.delenv("VAE_HUB_TEST_WEIGHTS", raising=False)  # serve() would point the app at other weights
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("VAE_HUB_") or k == "PYTHONPATH"}
    clean = {k: v for k, v in os.environ.items() if v is not None and k not in env}
    packages = [p for p in space.PACKAGES if (ROOT / p).is_dir()]  # what the checkout has must be in the Space
    probe = "import importlib, sys; print(*(importlib.import_module(p).__file__ for p in sys.argv[1:]))"
    where = subprocess.run(
        [sys.executable, "-c", probe, *packages], cwd=staged, env=clean, capture_output=True, text=True, timeout=60
    )
    assert where.returncode == 0, where.stderr
    assert all(Path(f).resolve().is_relative_to(staged.resolve()) for f in where.stdout.split()), where.stdout
    with serve(env=env, app_dir=staged) as url:
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"gradio" in r.read().lower()
        view, *recs, table = Client(url, verbose=False).predict(
            handle_file(str(staged / "examples" / "7_0000.png")), api_name="/reconstruct"
        )
        assert len(recs) == 4 and all(Path(p).is_file() for p in (view, *recs))

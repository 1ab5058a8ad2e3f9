"""Publishing to and loading from the Hub, for real: the real ``huggingface_hub`` client talks HTTP to a local
Hub-compatible endpoint (:mod:`tests.hub_server`, standing in for huggingface.co) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import OTHER_TOKEN, TOKEN
from hub_server import HubServer  # tests/ is on sys.path under pytest
from huggingface_hub import HfApi, ModelCard, constants

from training.push import main as push_main
from training.train import main as train_main
from vae_hub import VAE, VAEConfig, WeightsError

ROOT = Path(__file__).resolve().parent.parent
HUB_FILES = {".gitattributes", "config.json", "model.safetensors", "README.md"}


def _model(seed: int) -> VAE:
    torch.manual_seed(seed)
    return VAE(VAEConfig(hidden_dims=[32, 8, 2])).eval()


def _saved(model: VAE, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, fake_mnist: Path) -> Path:
    """A real training run's folder, written by the CLI: weights, settings, metrics, figures, model card."""
    out = tmp_path_factory.mktemp("weights")
    args = ["--regularizer", "sgvb", "--hidden-dims", "32", "8", "4", "--epochs", "1", "--kl-warmup-epochs", "1"]
    args += ["--data-dir", str(fake_mnist), "--out", str(out), "--ckpt-dir", str(out / "ckpt"), "--no-progress"]
    assert train_main(args) == 0
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
    with pytest.raises(WeightsError, match="alice/vae-rev: revision 'v3' does not exist on the Hub"):
        VAE.from_pretrained("alice/vae-rev", revision="v3", cache_dir=cache)


def test_local_files_only_after_caching(tmp_path: Path, hub_env: HubServer, monkeypatch) -> None:
    model, cache = _model(3), tmp_path / "cache"
    with HubServer({TOKEN: "alice"}) as transient:  # a hub that goes away after the download
        monkeypatch.setattr(constants, "ENDPOINT", transient.url)
        url_template = transient.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url_template)
        model.push_to_hub("alice/cached", token=TOKEN)  # the mixin's own push_to_hub, too
        assert_identical(VAE.from_pretrained("alice/cached", cache_dir=cache), model)
    with pytest.raises(WeightsError, match=r"not in the local cache \(local_files_only=True\)"):
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
        ("missing folder", [], "is not a model folder"),
        ("not a folder", [], "is not a model folder"),
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
    assert code == 1 and "the token was rejected" in err and "hf_wrong_token_secret" not in err
    code, _, err = _push(capsys, folder, "--repo-id", "bob/x", "--token", TOKEN)  # not alice's namespace
    assert code == 1 and "refused" in err and "namespace" in err and TOKEN not in err
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    code, _, err = _push(capsys, folder, "--repo-id", "alice/x", "--token", TOKEN)
    assert code == 1 and "could not reach the Hub at http://127.0.0.1:9" in err and TOKEN not in err


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
    with pytest.raises(WeightsError, match=r"not in the local cache \(the Hub could not be reached\)"):
        VAE.from_pretrained("alice/never-cached", cache_dir=cache)
    assert time.perf_counter() - t0 < 5  # hf_hub_download alone retries a dead network for ~30 s


def test_push_takes_regular_files_inside_the_folder_only(trained: Path, hub_env: HubServer, tmp_path: Path, capsys):
    """A figure that is a symlink (to a secret outside the folder, say the environment holding HF_TOKEN) or a
    special file is refused by name, and nothing is staged or sent."""
    secret = tmp_path / "secret.txt"
    secret.write_text("HF_TOKEN=hf_owner_secret")
    for name, plant in (
        ("samples.png", lambda p: p.symlink_to(secret)),
        ("curves.png", lambda p: p.symlink_to("/proc/self/environ")),
        ("eval.json", lambda p: os.mkfifo(p)),
        ("metrics.json", lambda p: p.symlink_to(trained / "config.json")),  # even one inside, via a link
    ):
        folder = Path(shutil.copytree(trained, tmp_path / f"copy-{name}"))
        (folder / name).unlink(missing_ok=True)
        plant(folder / name)
        before, out_dir = len(hub_env.requests()), tmp_path / f"staged-{name}"
        code, out, err = _push(capsys, folder, "--repo-id", "alice/leak", "--dry-run", "--out", out_dir)
        assert code == 2 and f"{folder / name} is " in err and "only regular files inside" in err, err
        assert err.count("\n") == 1 and not out_dir.exists() and len(hub_env.requests()) == before
        code, out, err = _push(capsys, folder, "--repo-id", "alice/leak", "--token", TOKEN)
        assert code == 2 and "alice/leak" not in hub_env.state.repos
    assert "hf_owner_secret" not in "".join(p.read_text(errors="replace") for p in tmp_path.rglob("staged*/*"))

"""The command-line tools' runs on a small MNIST-format dataset: a training run writes its folder all or nothing,
never over the bundled weights, with a card that states its own numbers and the command that made it."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from training import train

pytestmark = pytest.mark.slow  # each test runs the CLIs in fresh processes
ROOT = Path(__file__).resolve().parent.parent
FAST = ["--hidden-dims", "32", "8", "4", "--epochs", "2", "--kl-warmup-epochs", "1", "--batch-size", "16"]


def run(module: str, *args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def trained(fake_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained by the CLI from a fresh working directory, with the default --out."""
    cwd = tmp_path_factory.mktemp("cwd")
    r = run(
        "training.train",
        "--regularizer",
        "sgvb",
        *FAST,
        "--data-dir",
        str(fake_mnist),
        "--no-progress",
        cwd=cwd,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["folder"] == "runs/train/sgvb" and not (cwd / "weights").exists()
    return cwd / "runs" / "train" / "sgvb"


def test_the_cli_writes_a_complete_folder_whose_card_states_its_own_numbers(trained: Path) -> None:
    names = sorted(p.name for p in trained.iterdir())
    assert names == sorted(
        [
            "README.md",
            "config.json",
            "model.safetensors",
            "training_args.json",
            "metrics.json",
            "samples.png",
            "reconstructions.png",
            "latent.png",
            "latent_means.png",
            "curves.png",
        ]
    )
    metrics = json.loads((trained / "metrics.json").read_text())
    card = (trained / "README.md").read_text()
    assert f"| negative ELBO (last epoch) | {metrics['history'][-1]['test_nelbo']:.2f} |" in card
    assert "first 32" in card and "64 MNIST training images" in card
    args = json.loads((trained / "training_args.json").read_text())
    assert (
        args["epochs"] == 2
        and args["regularizer"] == "sgvb"
        and json.loads((trained / "config.json").read_text())
        == {"input_dim": 784, "hidden_dims": [32, 8, 4], "act_fun": "gelu"}
    )


def test_the_card_reproduce_command_is_the_run_that_made_it(trained: Path) -> None:
    card = (trained / "README.md").read_text()
    command = card.split("Reproduce it with `")[1].split("`")[0].split()
    assert command[:3] == ["python", "-m", "training.train"]
    again = train.build_parser().parse_args(command[3:])
    args = json.loads((trained / "training_args.json").read_text())
    assert all(getattr(again, k) == v for k, v in args.items() if k != "device"), (again, args)
    assert again.hidden_dims == [32, 8, 4] and str(again.out).startswith("runs/reproduce")


def test_evaluate_saves_its_numbers_first_and_a_new_model_never_keeps_old_numbers(
    trained: Path, fake_mnist: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "sgvb"
    folder.mkdir()
    for p in trained.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    r = run("training.evaluate", str(folder), "--data-dir", str(fake_mnist), "--iwae-k", "8", "--save", timeout=300)
    assert r.returncode == 0, r.stderr
    evaluation = json.loads((folder / "eval.json").read_text())
    assert evaluation["protocol"] == "grey" and evaluation["iwae"]["k"] == 8 and evaluation["test_images"] == 32
    assert f"| negative ELBO | {evaluation['nelbo']:.2f} |" in (folder / "README.md").read_text()
    # Retraining into the same place replaces the whole folder: the old eval.json does not survive.
    r = run(
        "training.train",
        "--regularizer",
        "sgvb",
        *FAST,
        "--data-dir",
        str(fake_mnist),
        "--no-progress",
        "--out",
        str(tmp_path),
        "--ckpt-dir",
        str(tmp_path / "ck"),
        "--seed",
        "1",
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert (
        not (folder / "eval.json").exists() and "| negative ELBO (last epoch) |" in (folder / "README.md").read_text()
    )


def _file_size_limit(limit: int) -> None:
    """In the child: writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored, or it would kill the process)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_failed_write_keeps_the_previous_folder_intact(trained: Path, fake_mnist: Path, tmp_path: Path) -> None:
    """Resuming a finished run writes no checkpoint, only the folder: under a file-size limit below the weights'
    size that write fails, in one line, and the previous folder is exactly as it was."""
    cwd = trained.parents[2]
    before = {p.name: p.read_bytes() for p in trained.iterdir()}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.train",
            "--regularizer",
            "sgvb",
            *FAST,
            "--data-dir",
            str(fake_mnist),
            "--no-progress",
            "--resume",
            "--seed",
            "0",
        ],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: _file_size_limit(20_000),
    )
    err = r.stderr.strip()
    assert r.returncode == 1 and len(err.splitlines()) == 1 and "cannot write runs/train/sgvb" in err, err
    assert "rerun with --resume" in err
    assert {p.name: p.read_bytes() for p in trained.iterdir()} == before
    assert sorted(p.name for p in trained.parent.iterdir()) == ["sgvb"]  # no half-written folder beside it


def test_evaluate_keeps_its_numbers_when_the_optional_parts_fail(
    trained: Path, fake_mnist: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "sgvb"
    folder.mkdir()
    for p in trained.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "metrics.json").write_text('{"history": [{"epoch": 1,')  # malformed
    r = run("training.evaluate", str(folder), "--data-dir", str(fake_mnist), "--iwae-k", "4", "--save", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().startswith("warning: eval.json is saved; the figures or the card could not be written")
    assert "Traceback" not in r.stderr and json.loads((folder / "eval.json").read_text())["iwae"]["k"] == 4

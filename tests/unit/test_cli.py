"""The command-line tools on a small MNIST-format dataset: `--help` without torch, every bad option in one line,
and the clear failures (the runs themselves are in tests/test_cli_runs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.evaluate import main as evaluate_main
from training.train import main as train_main

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--hidden-dims", "32", "8", "4", "--epochs", "2", "--kl-warmup-epochs", "1", "--batch-size", "16"]


def run(module: str, *args: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, **kw)


@pytest.mark.parametrize("module", ["training.train", "training.evaluate", "training.push"])
def test_help_answers_without_importing_torch(module: str) -> None:
    probe = (
        "import runpy, sys; sys.argv = ['x', '--help']\n"
        f"try: runpy.run_module('{module}', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage: python -m" in r.stdout, r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "argument --limit: invalid int ≥ 1 value: '0'"),
        (["--limit", "-5"], "argument --limit: invalid int ≥ 1 value: '-5'"),
        (["--test-limit", "0"], "argument --test-limit: invalid int ≥ 1 value: '0'"),
        (["--threads", "0"], "argument --threads: invalid int ≥ 1 value: '0'"),
        (["--lr", "nan"], "'lr' must be of type float (finite), got nan"),
        (["--lr", "inf"], "'lr' must be of type float (finite), got inf"),
        (["--epochs", "2"], "kl_warmup_epochs (10) is longer than the run (2 epochs)"),
        (["--epochs", "1"], "kl_warmup_epochs (10) is longer than the run (1 epoch)"),
        (["--batch-size", "0"], "batch_size must be at least 1, got 0"),
        (["--hidden-dims", "128", "3"], "must be even; got 3"),
        (["--device", "meta"], "device 'meta' cannot train"),
        (["--device", "tpu:0"], "unknown device 'tpu:0'"),
        (["--lr-schedule", "linear"], "lr_schedule must be one of ['constant', 'cosine']"),
    ],
)
def test_bad_options_are_one_line_with_exit_code_2(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    try:
        code = train_main([*args, "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    except SystemExit as e:  # argparse's own checks exit
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_cuda_is_one_line(tmp_path: Path, capsys) -> None:
    assert train_main(["--device", "cuda", "--data-dir", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: device 'cuda' is not available on this machine (try --device auto)\n"


def test_missing_data_and_a_missing_model_are_one_line(tmp_path: Path, capsys) -> None:
    assert train_main([*FAST, "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "MNIST not found" in err
    assert evaluate_main([str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.startswith("error: no such model folder")
    assert evaluate_main(["user/model", "--save"]) == 2
    assert capsys.readouterr().err == "error: --save needs a local model folder\n"

"""Distributed training under real ``torchrun`` processes (2 CPU ranks, gloo): the ranks end with identical
weights, rank 0 writes one loadable model, and a run killed mid-training resumes bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import checkpoint_epoch
from safetensors.torch import load_file

from training.train import main
from training.trainer import CKPT_NAME, load_checkpoint, weights_digest
from vae_hub import VAE

pytestmark = pytest.mark.slow  # real torchrun processes

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
EPOCHS = 16


def _args(mnist_root: Path, out: Path, *extra: str) -> list[str]:
    # 512 images in batches of 8: 32 steps per rank per epoch, each with a gradient all-reduce, so that
    # 16 epochs last long enough for a kill to land mid-run.
    return [
        *("--regularizer", "sgvb", "--epochs", str(EPOCHS), "--batch-size", "8", "--limit", "512", "--binarize"),
        *("--kl-warmup-epochs", "2"),
        *("--test-limit", "256", "--data-dir", str(mnist_root), "--no-progress"),
        *("--out", str(out), "--ckpt-dir", str(out / "ckpt"), *extra),
    ]


def _torchrun(mnist_root: Path, out: Path, *extra: str) -> list[str]:
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2")
    return [*torchrun, "-m", "training.train", *_args(mnist_root, out, *extra)]


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_ranks_agree_write_one_model_and_resume_bit_identical_after_a_kill(
    tmp_path: Path, mnist_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref_out, out = tmp_path / "ref", tmp_path / "run"
    reference = _start(_torchrun(mnist_root, ref_out))  # runs beside the one that gets killed
    victim = _start(_torchrun(mnist_root, out))
    ckpt = out / "ckpt" / "sgvb" / CKPT_NAME
    deadline = time.monotonic() + 120
    while checkpoint_epoch(ckpt) < 2 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # SIGTERM to torchrun, as a scheduler's preemption sends it: the agent passes it on to both workers and
    # waits for them (they run in sessions of their own).
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=60)
    assert victim.returncode != 0, err[-3000:]
    killed_at = checkpoint_epoch(ckpt)
    assert 2 <= killed_at < EPOCHS, "the kill must land mid-run"
    assert not (out / "sgvb").exists()  # nothing but the checkpoint was written before the end

    resumed = subprocess.run(_torchrun(mnist_root, out, "--resume"), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]

    for folder in (ref_out / "sgvb", out / "sgvb"):
        model = VAE.from_pretrained(folder)  # one loadable model, written by rank 0
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["world_size"] == 2 and metrics["global_batch_size"] == 16
        assert len(metrics["history"]) == EPOCHS and metrics["train_images"] == 512
        # Each rank hashed its own final weights; all equal, and equal to what was saved.
        assert metrics["replica_weights_sha256"] == [weights_digest(model)] * 2
    assert len(resumed.stdout.splitlines()) == 1  # one summary line: only rank 0 reports

    a, b = load_file(ref_out / "sgvb" / "model.safetensors"), load_file(out / "sgvb" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda p: [{k: v for k, v in h.items() if k != "seconds"} for h in json.loads(p.read_text())["history"]]  # noqa: E731
    assert strip(out / "sgvb" / "metrics.json") == strip(ref_out / "sgvb" / "metrics.json")
    state = load_checkpoint(ckpt)
    assert state["data"] == {"train_images": 512, "test_images": 256, "world_size": 2}
    noise = state["rng"]["noise"]
    assert len(noise) == 2 and not torch.equal(noise[0], noise[1])  # each rank its own reparameterization noise

    # A one-process resume of the two-process checkpoint would shard differently: refused in one line.
    assert main(_args(mnist_root, out, "--resume")) == 1
    assert "world_size: 2 in the checkpoint, 1 now" in capsys.readouterr().err

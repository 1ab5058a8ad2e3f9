"""Crash safety: a training process killed (SIGKILL) or interrupted (Ctrl-C) mid-epoch resumes to bit-identical
weights, a checkpoint on disk is never half-written, and a failed checkpoint write (EFBIG) is one line that keeps
the last good checkpoint."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import checkpoint_epoch, write_fake_mnist
from safetensors.torch import load_file

from training.trainer import CKPT_NAME, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # real training processes, killed and resumed

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
EPOCHS = 20  # long enough that a signal sent an epoch in lands before the end, on a quiet machine too


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4096 MNIST-format images in batches of 16: 256 steps, a few tenths of a second per epoch, so that a signal
    lands mid-epoch."""
    root = tmp_path_factory.mktemp("data")
    write_fake_mnist(root, n_train=4096, n_test=500)
    return root


def _train_cmd(data_root: Path, out: Path, ck: Path, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "training.train", "--regularizer", "sgvb", "--epochs", str(EPOCHS)),
        *("--kl-warmup-epochs", "1", "--data-dir", str(data_root), "--batch-size", "16"),
        *("--out", str(out), "--ckpt-dir", str(ck), "--no-progress", *extra),
    ]


def _interrupt_after(cmd: list[str], ckpt: Path, epoch: int, sig: signal.Signals) -> tuple[int, str]:
    """Start ``cmd``, wait until its checkpoint passes ``epoch``, then send ``sig`` a moment later (mid-epoch)."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background job's shell ignores Ctrl-C
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while checkpoint_epoch(ckpt) <= epoch and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_killed_and_interrupted_training_resumes_bit_identical(tmp_path: Path, data_root: Path) -> None:
    ref = subprocess.run(
        _train_cmd(data_root, tmp_path / "ref", tmp_path / "ref_ck"), cwd=ROOT, env=ENV, capture_output=True
    )
    assert ref.returncode == 0, ref.stderr

    out, ck = tmp_path / "out", tmp_path / "ck"
    ckpt = ck / "sgvb" / CKPT_NAME
    rc, err = _interrupt_after(_train_cmd(data_root, out, ck), ckpt, 0, signal.SIGINT)  # Ctrl-C
    assert rc == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    after_ctrl_c = checkpoint_epoch(ckpt)
    assert 1 <= after_ctrl_c < EPOCHS

    rc, _ = _interrupt_after(_train_cmd(data_root, out, ck, "--resume"), ckpt, after_ctrl_c, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    after_kill = checkpoint_epoch(ckpt)
    assert after_ctrl_c < after_kill < EPOCHS, "the kill must land before the run finishes"
    assert not (out / "sgvb").exists()

    done = subprocess.run(_train_cmd(data_root, out, ck, "--resume"), cwd=ROOT, env=ENV, capture_output=True)
    assert done.returncode == 0, done.stderr
    a, b = load_file(tmp_path / "ref" / "sgvb" / "model.safetensors"), load_file(out / "sgvb" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical weights
    strip = lambda p: [{k: v for k, v in h.items() if k != "seconds"} for h in json.loads(p.read_text())["history"]]  # noqa: E731
    assert strip(out / "sgvb" / "metrics.json") == strip(tmp_path / "ref" / "sgvb" / "metrics.json")
    assert not [p for p in ckpt.parent.iterdir() if p.name != CKPT_NAME]  # no temporaries left behind


WRITER = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    from training.trainer import HISTORY_KEYS, save_checkpoint
    model = torch.nn.Linear(1000, 2000)  # 8 MB of weights: each write takes a while
    opt = torch.optim.Adam(model.parameters())
    for epoch in range(1, 10**6):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(epoch)
        history = [{k: e for k in HISTORY_KEYS} for e in range(1, epoch + 1)]
        save_checkpoint(Path(sys.argv[1]), {"epoch": epoch, "history": history, "model": model.state_dict(),
                                            "optimizer": opt.state_dict(), "rng": {"torch": torch.get_rng_state()}})
        if epoch == 1:
            print("saved", flush=True)
    """
)


def test_a_checkpoint_is_never_half_written(tmp_path: Path) -> None:
    ckpt = tmp_path / CKPT_NAME
    for delay in (0.0, 0.03, 0.11, 0.27):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ckpt)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline() == b"saved\n"  # the first write is complete
        time.sleep(delay)  # the kill lands at assorted points of later writes
        proc.kill()
        proc.wait()
        proc.stdout.close()
        state = load_checkpoint(ckpt)  # never raises: the file is the previous or the new complete version
        assert [h["epoch"] for h in state["history"]] == list(range(1, state["epoch"] + 1)) and state["epoch"] >= 1
        assert all(torch.all(t == state["epoch"]) for t in state["model"].values())


def _file_size_limit(limit: int) -> None:
    """In the child: writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored, or it would kill the process)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, data_root: Path
) -> None:
    out, ck = tmp_path / "out", tmp_path / "ck"
    ckpt = ck / "sgvb" / CKPT_NAME
    cmd = _train_cmd(data_root, out, ck)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stderr=subprocess.PIPE, text=True)
    while checkpoint_epoch(ckpt) < 1 and proc.poll() is None:  # a real epoch-1 checkpoint, then stop the run
        time.sleep(0.01)
    proc.kill()
    proc.communicate(timeout=60)
    good = load_checkpoint(ckpt)["epoch"]
    assert 1 <= good < EPOCHS

    # Resume under a file-size limit below the checkpoint's size: the next checkpoint cannot be written.
    limit = ckpt.stat().st_size // 2
    r = subprocess.run(
        [*cmd, "--resume"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        preexec_fn=lambda: _file_size_limit(limit),
    )
    err = r.stderr.strip()
    assert r.returncode == 1 and len(err.splitlines()) == 1, err
    assert f"cannot write the checkpoint {ckpt} after epoch {good + 1} (File too large)" in err
    assert f"the last good checkpoint (epoch {good}) is kept" in err
    assert load_checkpoint(ckpt)["epoch"] == good  # intact, and no temporary left beside it
    assert [p.name for p in ckpt.parent.iterdir()] == [CKPT_NAME]
    assert not (out / "sgvb").exists()

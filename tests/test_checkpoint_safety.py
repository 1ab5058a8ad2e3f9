"""Hostile or inconsistent checkpoints and unwritable outputs: ``python -m training.train --resume`` refuses
each in one line that names the file and the problem, writes no model, and never shows a traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from training.checkpoint import CKPT_NAME, load_checkpoint
from training.train import main

Tensors = dict[str, torch.Tensor]
Meta = dict[str, str]


def _argv(mnist_root: Path, out: Path, ck: Path, *extra: str) -> list[str]:
    return [
        *("--regularizer", "sgvb", "--epochs", "2", "--batch-size", "128", "--limit", "256", "--test-limit", "100"),
        *("--data-dir", str(mnist_root), "--out", str(out), "--ckpt-dir", str(ck), "--no-progress", *extra),
    ]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    """The CLI's checkpoint of a finished 2-epoch run: resuming it with the same settings loads and checks every
    field, trains nothing more, and writes the model (the NaN case used to write a NaN model and exit 0)."""
    root = tmp_path_factory.mktemp("good")
    assert main(_argv(mnist_root, root / "out", root / "ck")) == 0
    return root / "ck" / "sgvb" / CKPT_NAME


def _tamper(src: Path, dst: Path, edit: Callable[[Tensors, Meta], None]) -> None:
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(tensors, meta)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dst), metadata=meta)


def _first(prefix: str, tensors: Tensors) -> str:
    return sorted(k for k in tensors if k.startswith(prefix))[0]


def _nan_weights(t: Tensors, m: Meta) -> None:
    name = _first("model/", t)
    t[name] = torch.full_like(t[name], float("nan"))


def _wrong_shape(t: Tensors, m: Meta) -> None:
    name = _first("model/", t)
    t[name] = torch.zeros(3, 3)


def _missing(t: Tensors, m: Meta) -> None:
    del t[_first("model/", t)]


def _short_rng(t: Tensors, m: Meta) -> None:
    t["rng/torch"] = t["rng/torch"][:100].clone()


def _float_rng(t: Tensors, m: Meta) -> None:
    t["rng/noise"] = t["rng/noise"].float()


def _optim_params(t: Tensors, m: Meta) -> None:
    meta = json.loads(m["optimizer"])
    meta["param_groups"][0]["params"] = [0]
    m["optimizer"] = json.dumps(meta)


def _optim_lr(t: Tensors, m: Meta) -> None:
    meta = json.loads(m["optimizer"])
    meta["param_groups"][0]["lr"] = "fast"
    m["optimizer"] = json.dumps(meta)


def _optim_shape(t: Tensors, m: Meta) -> None:
    name = _first("optim/", {k: v for k, v in t.items() if k.endswith("/exp_avg")})
    t[name] = torch.zeros(7)


def _epoch(value: str) -> Callable[[Tensors, Meta], None]:
    def edit(t: Tensors, m: Meta) -> None:
        m["epoch"] = value

    return edit


def _history(t: Tensors, m: Meta) -> None:
    m["history"] = json.dumps([{"epoch": 5}, {"epoch": 6}])


CASES = {
    "nan_weights": (_nan_weights, "holds NaN or infinite values"),
    "negative_epoch": (_epoch("-3"), "its epoch is -3, not a completed epoch"),
    "fractional_epoch": (_epoch("1.5"), "its epoch is 1.5"),
    "non_numeric_epoch": (_epoch("one"), "unreadable"),
    "history_of_another_run": (_history, "history entry 1 is not the record of epoch 1"),
    "history_too_short": (_epoch("3"), "it is at epoch 3 but its history has 2 entries"),
    "wrong_model_shape": (_wrong_shape, "has shape [3, 3]"),
    "missing_tensor": (_missing, "is missing"),
    "truncated_rng_state": (_short_rng, "RNG state rng/torch is 100 bytes, expected 5056"),
    "float_rng_state": (_float_rng, "RNG state rng/noise is not a byte vector"),
    "optimizer_groups_of_other_params": (_optim_params, "optimizer parameter group 0 does not match"),
    "optimizer_lr_not_a_number": (_optim_lr, "invalid 'lr': 'fast'"),
    "optimizer_state_of_wrong_shape": (_optim_shape, "expected shape"),
}


@pytest.mark.parametrize("case", CASES)
def test_resume_refuses_a_hostile_checkpoint_in_one_line_and_writes_no_model(
    case: str, good: Path, mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, problem = CASES[case]
    ckpt = tmp_path / "ck" / "sgvb" / CKPT_NAME
    _tamper(good, ckpt, edit)
    assert main(_argv(mnist_root, tmp_path / "out", tmp_path / "ck", "--resume")) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and str(ckpt) in err
    assert problem in err
    assert not (tmp_path / "out" / "sgvb").exists()


@pytest.mark.slow
def test_resume_refuses_other_data_limits(
    good: Path, mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ck = tmp_path / "ck"
    (ck / "sgvb").mkdir(parents=True)
    shutil.copy(good, ck / "sgvb" / CKPT_NAME)
    argv = _argv(mnist_root, tmp_path / "out", ck, "--resume")
    assert main([*argv, "--limit", "128"]) == 1
    assert "train_images: 256 in the checkpoint, 128 now" in capsys.readouterr().err
    assert main([*argv, "--test-limit", "50"]) == 1
    assert "test_images: 100 in the checkpoint, 50 now" in capsys.readouterr().err
    assert main(argv) == 0  # the same limits resume (the run was complete: it writes the model)
    assert (tmp_path / "out" / "sgvb" / "model.safetensors").is_file()


def test_unwritable_out_fails_before_training(
    mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    ck = tmp_path / "ck"
    assert main(_argv(mnist_root, blocker / "out", ck)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--out {blocker / 'out'} is not writable" in err
    assert not (ck / "sgvb").exists()  # refused before the first epoch


@pytest.mark.slow
def test_a_failed_model_write_is_one_line_and_keeps_the_checkpoint(
    mnist_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, ck = tmp_path / "out", tmp_path / "ck"
    (out / "sgvb" / "model.safetensors").mkdir(parents=True)  # a folder where the weights must go: EISDIR
    assert main(_argv(mnist_root, out, ck)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot write {out / 'sgvb'}" in err
    assert "the last good checkpoint (epoch 2) is kept" in err and "--resume" in err
    assert load_checkpoint(ck / "sgvb" / CKPT_NAME).epoch == 2

"""The training loop on a tiny network and random images: it learns, it is deterministic, its schedules are the
documented ones, it resumes bit-identically, and it refuses every checkpoint that does not fit before any epoch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from training import Trainer, TrainingError, recipe
from training.trainer import CKPT_NAME, CheckpointError, kl_weight_at, load_checkpoint, lr_at
from vae_hub import Config, MNISTBatches

TINY = {"hidden_dims": [32, 8, 4], "batch_size": 16}


def images(n: int = 96, seed: int = 0) -> torch.Tensor:
    """Blobs of ink on black, so that there is something to learn."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 28, 28)
    for i in range(n):
        r, c = torch.randint(4, 20, (2,), generator=g).tolist()
        x[i, r : r + 6, c : c + 6] = 1.0
    return (x * 255).to(torch.uint8)


def loader(n: int = 96, **kw) -> MNISTBatches:
    return MNISTBatches(images(n), torch.zeros(n, dtype=torch.long), 16, generator=torch.Generator(), **kw)


def fit(epochs: int = 3, reg: str = "sgvb", ckpt: Path | None = None, resume: bool = False, train=None, **cfg):
    config = recipe(**{**TINY, "epochs": epochs, "kl_warmup_epochs": 1.0, **cfg})
    test = loader(32, shuffle=False)
    return Trainer(config).fit(reg, train or loader(), test, ckpt_dir=ckpt, resume=resume, progress=False)


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.mark.parametrize("reg", ["sgvb", "kl_wo_e"])
def test_training_lowers_the_loss_and_is_deterministic(reg: str) -> None:
    model, history = fit(4, reg)
    assert history[-1]["train_nelbo"] < history[0]["train_nelbo"] and history[-1]["test_nelbo"] < 543.0
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and not model.training
    again, _ = fit(4, reg)
    assert same(model, again)
    trainer = Trainer(recipe(**TINY, epochs=4, kl_warmup_epochs=1.0))
    named = getattr(trainer, f"train_with_{reg}")(loader(), loader(32, shuffle=False), progress=False).model
    assert same(model, named)  # the original API is the same run


def test_the_original_config_trains_with_the_original_api() -> None:
    model, history = Trainer(Config(**TINY, epochs=1)).train_with_kl_wo_e(loader(), progress=False)
    assert len(history) == 1 and "test_nelbo" not in history[0] and model.latent_dim == 2


def test_schedules_warm_up_and_decay() -> None:
    cfg = recipe(epochs=10, warmup_epochs=2.0, kl_warmup_epochs=4.0)
    lrs = [lr_at(cfg, s, 100, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(3e-3 / 20) and lrs[19] == pytest.approx(3e-3) and lrs[-1] < 1e-5
    assert all(a <= b for a, b in zip(lrs[:20], lrs[1:20])) and all(a >= b for a, b in zip(lrs[20:], lrs[21:]))
    betas = [kl_weight_at(cfg, s, 10) for s in range(60)]
    assert betas[0] == pytest.approx(1 / 40) and betas[39] == 1.0 and set(betas[40:]) == {1.0}
    assert lr_at(Config(), 123, 1000, 10) == 1e-3  # the original constant learning rate


def test_the_output_bias_starts_at_the_mean_image() -> None:
    model, _ = fit(1, lr=1e-12)  # a learning rate too small to move it
    mean = (images().float() / 255).reshape(96, -1).mean(0).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(model.decoder[-1].bias, torch.logit(mean), atol=1e-5)


class Interrupting(MNISTBatches):
    """Raises KeyboardInterrupt halfway through epoch ``at`` (as Ctrl-C would)."""

    def __init__(self, at: int, **kw) -> None:
        super().__init__(images(96), torch.zeros(96, dtype=torch.long), 16, generator=torch.Generator(), **kw)
        self.at, self.epoch = at, 0

    def __iter__(self) -> Iterator:
        self.epoch += 1
        for i, b in enumerate(super().__iter__()):
            if self.epoch == self.at + 1 and i == 3:  # +1: the trainer's first pass sets the output bias
                raise KeyboardInterrupt
            yield b


@pytest.mark.parametrize("binarize", [False, True])
def test_an_interrupted_run_resumes_bit_identical(tmp_path: Path, binarize: bool) -> None:
    ref, ref_history = fit(4, ckpt=tmp_path / "ref", binarize=binarize, train=loader(binarize=binarize))
    with pytest.raises(KeyboardInterrupt):
        fit(4, ckpt=tmp_path / "run", binarize=binarize, train=Interrupting(3, binarize=binarize))
    assert load_checkpoint(tmp_path / "run" / CKPT_NAME)["epoch"] == 2
    resumed, history = fit(4, ckpt=tmp_path / "run", resume=True, binarize=binarize, train=loader(binarize=binarize))
    assert same(resumed, ref) and strip(history) == strip(ref_history)
    state = torch.load(tmp_path / "run" / CKPT_NAME, weights_only=True)  # no pickled code: tensors and values
    assert state["epoch"] == 4 and set(state["rng"]) == {"torch", "noise", "shuffle"}


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    class Poisoned(MNISTBatches):
        epoch = 0

        def __iter__(self) -> Iterator:
            self.epoch += 1
            for x, y in super().__iter__():
                yield (x * float("nan") if self.epoch == 4 else x), y

    train = Poisoned(images(), None, 16, generator=torch.Generator())
    with pytest.raises(
        TrainingError, match=r"loss became nan in epoch 3 .*the last good checkpoint \(epoch 2\) is kept"
    ):
        fit(5, ckpt=tmp_path, train=train)


def test_a_loader_that_does_not_binarize_as_the_config_says_is_refused() -> None:
    with pytest.raises(TrainingError, match="binarize=True but the loader does not"):
        fit(1, binarize=True)


def test_an_explicit_epoch_count_is_used_or_refused_never_replaced() -> None:
    trainer = Trainer(recipe(**TINY, epochs=4, kl_warmup_epochs=1.0))
    assert len(trainer.fit("kl_wo_e", loader(), epochs=1, progress=False).history) == 1
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        trainer.fit("kl_wo_e", loader(), epochs=0, progress=False)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint after epoch 2 of a 4-epoch run that was interrupted."""
    folder = tmp_path_factory.mktemp("good")
    with pytest.raises(KeyboardInterrupt):
        fit(4, ckpt=folder, train=Interrupting(3))
    return folder / CKPT_NAME


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


def _first_param(state: dict) -> str:
    return next(iter(state["model"]))


CASES = {
    "nan weights": (lambda s: s["model"][_first_param(s)].fill_(float("nan")), "holds NaN or infinite values"),
    "negative epoch": (lambda s: s.update(epoch=-3), "it holds no completed epoch"),
    "fractional epoch": (lambda s: s.update(epoch=1.5), "it holds no completed epoch"),
    "history of another run": (lambda s: s.update(history=[{"epoch": 5}, {"epoch": 6}]), "history record 1 is not"),
    "malformed history record": (lambda s: s["history"][1].pop("train_kl"), "history record 2 is not"),
    "history with a string": (lambda s: s["history"][0].update(lr="fast"), "history record 1 is not"),
    "history too short": (lambda s: s.update(epoch=3), "it is at epoch 3 but its history has 2 records"),
    "wrong model shape": (lambda s: s["model"].update({_first_param(s): torch.zeros(3, 3)}), "do not fit this network"),
    "missing tensor": (lambda s: s["model"].pop(_first_param(s)), "its weights do not fit this network"),
    "truncated rng state": (lambda s: s["rng"].update(torch=s["rng"]["torch"][:100]), "RNG state"),
    "float rng state": (lambda s: s["rng"].update(noise=[s["rng"]["noise"][0].float()]), "state"),
    "optimizer of other parameters": (lambda s: s["optimizer"]["param_groups"][0].update(params=[0]), "group"),
    "optimizer eps not a number": (lambda s: s["optimizer"]["param_groups"][0].update(eps="tiny"), "'eps'"),
    "optimizer state of wrong shape": (
        lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(7)),
        "optimizer state does not fit",
    ),
    "other settings": (lambda s: s["config"].update(lr=0.5), "lr: 0.5 in the checkpoint, 0.003 now"),
    "other data": (lambda s: s["data"].update(train_images=1000), "train_images: 1000 in the checkpoint, 96 now"),
    "not a checkpoint": (lambda s: s.clear(), "it holds no completed epoch"),
}


class Counting(MNISTBatches):
    passes = 0

    def __iter__(self) -> Iterator:
        self.passes += 1
        return super().__iter__()


@pytest.mark.parametrize("case", CASES)
def test_resume_refuses_a_checkpoint_that_does_not_fit_before_any_epoch(good: Path, tmp_path: Path, case: str) -> None:
    change, problem = CASES[case]
    ckpt = tmp_path / CKPT_NAME
    ckpt.write_bytes(good.read_bytes())
    _edit(ckpt, change)
    train = Counting(images(), None, 16, generator=torch.Generator())
    with pytest.raises(CheckpointError) as info:
        fit(4, ckpt=tmp_path, resume=True, train=train)
    message = str(info.value)
    assert problem in message and str(ckpt) in message and "\n" not in message
    assert train.passes == 1  # only the output-bias pass: no epoch ran


def test_an_unreadable_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / CKPT_NAME).write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(CheckpointError, match=r"cannot resume from .*; delete it to start afresh"):
        fit(2, ckpt=tmp_path, resume=True)


def test_resuming_a_finished_run_trains_nothing_more(tmp_path: Path) -> None:
    fit(2, ckpt=tmp_path)
    model, history = fit(2, ckpt=tmp_path, resume=True)
    assert len(history) == 2 and math.isfinite(history[-1]["test_nelbo"])
    with pytest.raises(CheckpointError, match="epochs: 2 in the checkpoint, 1 now"):
        fit(1, ckpt=tmp_path, resume=True, kl_warmup_epochs=1.0)


def test_a_checkpoint_resumes_on_another_device_setting(good: Path, tmp_path: Path) -> None:
    (tmp_path / CKPT_NAME).write_bytes(good.read_bytes())
    assert torch.load(good, weights_only=True)["config"]["device"] == "auto"
    assert len(fit(4, ckpt=tmp_path, resume=True, device="cpu").history) == 4

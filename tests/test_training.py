"""Training and evaluation on small subsets of the real MNIST: the loop learns, resumes exactly, and the CLIs
write loadable weights, a model card, metrics and figures."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from huggingface_hub import ModelCard
from PIL import Image
from safetensors import safe_open

from training import evaluate as evaluate_cli
from training import train as train_cli
from training.card import write_model_card
from training.checkpoint import CKPT_NAME, CheckpointError, load_checkpoint
from training.evaluate import evaluate
from training.figures import write_figures
from training.trainer import Trainer, TrainingError, init_output_bias, kl_weight_at, lr_at, recipe
from vae_hub import VAE, Config, MNISTBatches, load_mnist
from vae_hub.hub import BUNDLED, bundled_weights

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small(mnist_root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    images, labels = load_mnist("train", mnist_root)
    test_images, test_labels = load_mnist("test", mnist_root)
    return {"train": (images[:1024], labels[:1024]), "test": (test_images[:500], test_labels[:500])}


def _loaders(small: dict, batch_size: int = 64, cls: type[MNISTBatches] = MNISTBatches) -> tuple:
    train = cls(*small["train"], batch_size, shuffle=True, generator=torch.Generator())
    return train, MNISTBatches(*small["test"], 250, shuffle=False)


def _same_weights(a: VAE, b: VAE) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Interrupting(MNISTBatches):
    """A loader that raises KeyboardInterrupt (as Ctrl-C would) at batch ``at[1]`` of its ``at[0]``-th pass."""

    at = (3, 5)
    passes = 0

    def __iter__(self):
        self.passes += 1
        for i, batch in enumerate(super().__iter__()):
            if (self.passes, i) == self.at:
                raise KeyboardInterrupt
            yield batch


class Poisoned(MNISTBatches):
    """A loader whose ``poison_epoch``-th pass yields a NaN image, as corrupt input data would."""

    poison_epoch = 3
    passes = 0

    def __iter__(self):
        self.passes += 1
        for x, y in super().__iter__():
            if self.passes == self.poison_epoch:
                x = x.clone()
                x[0, 0] = float("nan")
            yield x, y


@pytest.mark.slow
@pytest.mark.parametrize("regularizer", ["sgvb", "kl_wo_e"])
def test_short_run_lowers_the_loss(small: dict, regularizer: str) -> None:
    train, test = _loaders(small)
    model, history = Trainer(Config(epochs=3, batch_size=64)).fit(regularizer, train, test, progress=False)
    assert isinstance(model, VAE) and model.config.regularizer == regularizer
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for h in history:
        for key in ("train_nelbo", "train_rec", "train_kl", "test_nelbo", "test_rec", "test_kl"):
            assert math.isfinite(h[key])
        assert h["test_nelbo"] == pytest.approx(h["test_rec"] + h["test_kl"])
    # An untrained VAE sits near 784·log 2 ≈ 543 nats; a few epochs on 1k images must cut well into that.
    assert history[-1]["test_nelbo"] < history[0]["test_nelbo"] - 20
    assert history[-1]["train_nelbo"] < 400


def test_train_with_named_regularizers_is_deterministic(small: dict) -> None:
    trainer = Trainer(Config(epochs=1, batch_size=128))
    a, _ = trainer.train_with_sgvb(_loaders(small, 128)[0], progress=False)
    b, hist = trainer.train_with_sgvb(_loaders(small, 128)[0], progress=False)
    c, _ = trainer.train_with_kl_wo_e(_loaders(small, 128)[0], progress=False)
    assert _same_weights(a, b) and len(hist) == 1  # the same seed gives the same model
    assert a.config.regularizer == "sgvb" and c.config.regularizer == "kl_wo_e"
    assert not _same_weights(a, c)


def test_cosine_schedule_warms_up_and_decays() -> None:
    cfg = Config(lr=3e-3, lr_schedule="cosine", warmup_epochs=1, min_lr=0.0)
    lrs = [lr_at(cfg, s, 100, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(3e-4) and lrs[9] == pytest.approx(3e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 1e-5
    assert lr_at(Config(), 57, 100, 10) == 1e-3  # the original: constant
    with pytest.raises(ValueError, match="lr_schedule"):
        Config(lr_schedule="step")


def test_kl_warm_up_rises_linearly_then_stays_at_one() -> None:
    warm = Config(kl_warmup_epochs=2)
    assert [kl_weight_at(warm, step, 10) for step in (0, 9, 19, 20, 500)] == [0.05, 0.5, 1.0, 1.0, 1.0]
    assert kl_weight_at(Config(), 0, 10) == 1.0  # off by default: Trainer(Config()) is the original loop


def test_the_cli_defaults_are_the_importable_recipe() -> None:
    from training.train import SKIPPED_FIELDS

    args = train_cli.build_parser().parse_args([])
    fields = {k: getattr(args, k) for k in Config().to_dict() if k not in SKIPPED_FIELDS}
    assert Config(**fields) == recipe() != Config()
    assert recipe().kl_warmup_epochs == 10 and recipe().lr_schedule == "cosine"


def test_output_bias_starts_at_the_mean_image_and_keeps_training_deterministic(small: dict) -> None:
    model, loader = VAE(), _loaders(small)[0]
    init_output_bias(model, loader)
    mean = (small["train"][0].reshape(-1, 784).float() / 255).mean(0).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(torch.sigmoid(model.decoder[-1].bias), mean, atol=1e-5)
    a, _ = Trainer(Config(epochs=1, init_output_bias=True)).fit("kl_wo_e", *_loaders(small), progress=False)
    b, _ = Trainer(Config(epochs=1, init_output_bias=True)).fit("kl_wo_e", *_loaders(small), progress=False)
    assert _same_weights(a, b)  # the extra pass over the data does not disturb the seeded shuffling


@pytest.mark.slow
def test_interrupted_run_resumes_bit_identical(small: dict, tmp_path: Path) -> None:
    cfg = Config(epochs=4, batch_size=64, lr=3e-3, lr_schedule="cosine", warmup_epochs=1, init_output_bias=True)
    reference, ref_history = Trainer(cfg).fit("sgvb", *_loaders(small), progress=False)

    train, test = _loaders(small, cls=Interrupting)
    train.at = (4, 5)  # Ctrl-C mid-epoch 3: the first pass over the data is init_output_bias's
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg).fit("sgvb", train, test, ckpt_dir=tmp_path, progress=False)
    state = load_checkpoint(tmp_path / CKPT_NAME)
    assert state.epoch == 2 and len(state.history) == 2  # the last completed epoch, intact

    resumed, history = Trainer(cfg).fit("sgvb", *_loaders(small), ckpt_dir=tmp_path, resume=True, progress=False)
    assert _same_weights(resumed, reference)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in ref_history]
    assert load_checkpoint(tmp_path / CKPT_NAME).epoch == 4
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_checkpoint_is_plain_safetensors(small: dict, tmp_path: Path) -> None:
    Trainer(Config(epochs=1, batch_size=256)).fit("kl_wo_e", *_loaders(small, 256), ckpt_dir=tmp_path, progress=False)
    with safe_open(str(tmp_path / CKPT_NAME), framework="pt") as f:
        names = set(f.keys())
        meta = f.metadata()
    assert {"rng/torch", "rng/noise", "rng/shuffle"} <= names
    assert any(n.startswith("model/") for n in names) and any(n.startswith("optim/") for n in names)
    assert meta["format"] == "vae-hub-checkpoint/1" and json.loads(meta["config"])["regularizer"] == "kl_wo_e"


def test_resume_refuses_other_settings_and_an_unreadable_file(small: dict, tmp_path: Path) -> None:
    Trainer(Config(epochs=1, batch_size=256)).fit("kl_wo_e", *_loaders(small, 256), ckpt_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="lr: 0.001 in the checkpoint, 0.002 now"):
        Trainer(Config(epochs=1, batch_size=256, lr=2e-3)).fit(
            "kl_wo_e", *_loaders(small, 256), ckpt_dir=tmp_path, resume=True, progress=False
        )
    (tmp_path / CKPT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        Trainer(Config(epochs=1, batch_size=256)).fit(
            "kl_wo_e", *_loaders(small, 256), ckpt_dir=tmp_path, resume=True, progress=False
        )


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(small: dict, tmp_path: Path) -> None:
    train, test = _loaders(small, 256, cls=Poisoned)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 3.*last good checkpoint \(epoch 2\)"):
        Trainer(Config(epochs=5, batch_size=256)).fit("sgvb", train, test, ckpt_dir=tmp_path, progress=False)
    state = load_checkpoint(tmp_path / CKPT_NAME)
    assert state.epoch == 2 and all(torch.isfinite(t).all() for t in state.model.values())


def test_figures_render_to_png(small: dict, tmp_path: Path) -> None:
    model, history = Trainer(Config(epochs=2, batch_size=256)).fit("kl_wo_e", *_loaders(small, 256), progress=False)
    paths = write_figures(model, small["test"][0], tmp_path, history)
    assert {p.name for p in paths} == {"samples.png", "reconstructions.png", "latent.png", "curves.png"}
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC
        with Image.open(p) as im:
            assert im.width > 100 and im.height > 50
        assert p.stat().st_size < 200_000  # compact enough to commit


@pytest.mark.slow
def test_evaluate_numbers_are_consistent_bounds_and_variances(small: dict) -> None:
    model, _ = Trainer(Config(epochs=1, batch_size=256)).fit("sgvb", *_loaders(small, 256), progress=False)
    result = evaluate(model, small["test"][0][:300], iwae_k=50, iwae_chunk=20, grad_var=True, gv_draws=5)
    assert result["nelbo"] == pytest.approx(result["rec"] + result["kl"]) and result["kl"] > 0
    # log p(x) ≥ IWAE bound, and the K-sample bound is tighter than the single-sample ELBO on average.
    assert -result["iwae"]["log_likelihood"] < result["nelbo"]
    gv = result["grad_variance"]["by_regularizer"]
    assert set(gv) == {"sgvb", "kl_wo_e", "score_function"}
    assert all(v["variance"] > 0 for v in gv.values())
    assert gv["score_function"]["variance"] > gv["sgvb"]["variance"]  # pathwise beats REINFORCE
    # The closed-form KL is deterministic given x: only the Monte Carlo estimators' KL gradients are noisy.
    assert gv["kl_wo_e"]["kl_variance"] == 0 and gv["sgvb"]["kl_variance"] > 0
    init = result["grad_variance_at_init"]["by_regularizer"]  # wide posteriors: there the MC KL's noise shows
    assert init["sgvb"]["variance"] > 2 * init["kl_wo_e"]["variance"]


def test_model_card_has_metadata_and_license(tmp_path: Path) -> None:
    folder = tmp_path / "kl_wo_e"
    VAE(Config(regularizer="kl_wo_e")).save_pretrained(folder)
    card_path = write_model_card(folder, repo_id="someone/vae-mnist-kl-wo-e")
    card = ModelCard.load(card_path)
    assert card.data.license == "cc-by-sa-3.0" and card.data.library_name == "vae-hub"
    assert card.data.datasets == ["mnist"] and "kl_wo_e" in card.data.tags
    text = card_path.read_text()
    assert 'VAE.from_pretrained("someone/vae-mnist-kl-wo-e")' in text
    assert "CC BY-SA 3.0" in text and "LeCun" in text and "not a score-function" in text


def test_bundled_cards_reproduce_commands_rebuild_their_own_model() -> None:
    """Each bundled card's command, parsed by the training CLI, trains that architecture and estimator into a
    fresh folder (never over the bundled weights)."""
    outputs: dict[Path, Path] = {}
    for name in BUNDLED:
        folder = bundled_weights(name)
        text = " ".join((folder / "README.md").read_text().split())
        command = re.search(r"`python -m training\.train ([^`]*)`", text)
        assert command, name
        args = train_cli.build_parser().parse_args(shlex.split(command.group(1).replace("\\ ", "")))
        config = json.loads((folder / "config.json").read_text())
        assert args.hidden_dims == config["hidden_dims"] and args.regularizer == folder.name, name
        # the CLI's paths are relative to the checkout
        out, ckpt = (ROOT / args.out / folder.name).resolve(), (ROOT / args.ckpt_dir / folder.name).resolve()
        assert not out.is_relative_to(ROOT / "weights"), name  # never over the bundled weights
        outputs[out] = ckpt
    # and never one model over another, nor one's checkpoint resumed by another
    assert len(outputs) == len(set(outputs.values())) == len(BUNDLED)


@pytest.mark.slow
def test_train_and_evaluate_clis_write_loadable_models_with_cards_metrics_and_figures(
    tmp_path: Path, mnist_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, ck = tmp_path / "weights", tmp_path / "ck"
    common = ["--data-dir", str(mnist_root), "--limit", "1024", "--test-limit", "500", "--no-progress"]
    rc = train_cli.main(["--regularizer", "both", "--epochs", "2", "--out", str(out), "--ckpt-dir", str(ck), *common])
    stdout = capsys.readouterr().out
    assert rc == 0
    assert [json.loads(line)["regularizer"] for line in stdout.splitlines()] == ["sgvb", "kl_wo_e"]
    for variant in ("sgvb", "kl_wo_e"):
        folder = out / variant
        model = VAE.from_pretrained(folder)
        assert model.config.regularizer == variant and model.latent_dim == 2
        # config.json is the architecture; the recipe's settings sit beside it in training_args.json
        assert set(json.loads((folder / "config.json").read_text())) == {
            "input_dim",
            "hidden_dims",
            "act_fun",
            "regularizer",
        }
        args = json.loads((folder / "training_args.json").read_text())
        assert args == recipe(epochs=2).training_args()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["active_dims"] in (0, 1, 2) and len(metrics["mu_variance"]) == 2
        assert len(metrics["history"]) == 2 and metrics["train_images"] == 1024
        assert metrics["world_size"] == 1 and len(metrics["replica_weights_sha256"]) == 1
        assert {"train_nelbo", "train_rec", "train_kl", "test_nelbo", "test_rec", "test_kl"} <= set(
            metrics["history"][0]
        )
        card = ModelCard.load(folder / "README.md")
        assert card.data.license == "cc-by-sa-3.0" and card.data.eval_results[0].metric_type == "nelbo"
        assert "only the first 1,024 MNIST training images" in card.text and "60,000" not in card.text
        assert (folder / "curves.png").read_bytes()[:8] == PNG_MAGIC
        assert load_checkpoint(ck / variant / CKPT_NAME).epoch == 2

    rc = evaluate_cli.main(
        [
            str(out / "sgvb"),
            "--data-dir",
            str(mnist_root),
            "--limit",
            "200",
            "--iwae-k",
            "30",
            "--iwae-chunk",
            "7",
            "--grad-variance",
            "--gv-batches",
            "1",
            "--gv-draws",
            "3",
            "--no-classifier",  # the classifier's own test trains it once (tests/test_classifier.py)
            "--save",
        ]
    )
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("nelbo", "rec", "kl", "iwae", "grad_variance", "grad_variance_at_init", "figures", "kl_estimator"):
        assert key in result
    assert result["iwae"]["k"] == 30 and result["iwae"]["seconds"] > 0 and result["test_images"] == 200
    assert all(Path(p).is_file() for p in result["figures"])
    saved = json.loads((out / "sgvb" / "eval.json").read_text())
    assert saved["nelbo"] == result["nelbo"]
    card_text = (out / "sgvb" / "README.md").read_text()
    assert "IWAE log-likelihood" in card_text and "Gradient variance" in card_text


def test_clis_refuse_missing_data_and_a_missing_model_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "w"), "--ckpt-dir", str(tmp_path / "c")]
    assert train_cli.main(argv) == 2  # an exception would propagate here: the message is all the user sees
    assert capsys.readouterr().err.startswith("error: MNIST not found")
    assert evaluate_cli.main([str(tmp_path / "no-model")]) == 2
    assert "no such model folder" in capsys.readouterr().err

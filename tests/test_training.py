"""Training and evaluation on the real MNIST, through the command-line tools: loadable models with their cards,
metrics and figures, consistent bounds and gradient variances, the binarized protocol, and the bundled cards'
reproduce commands."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from training import recipe
from training import train as train_cli
from training.evaluate import main as evaluate_main
from training.trainer import CKPT_NAME, load_checkpoint
from vae_hub import VAE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_train_and_evaluate_write_loadable_models_with_cards_metrics_and_figures(
    tmp_path: Path, mnist_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, ck = tmp_path / "out", tmp_path / "ck"
    common = ["--data-dir", str(mnist_root), "--limit", "1024", "--test-limit", "500", "--no-progress"]
    argv = [
        "--regularizer",
        "both",
        "--epochs",
        "2",
        "--kl-warmup-epochs",
        "1",
        "--out",
        str(out),
        "--ckpt-dir",
        str(ck),
    ]
    assert train_cli.main([*argv, *common]) == 0
    assert [json.loads(line)["regularizer"] for line in capsys.readouterr().out.splitlines()] == ["sgvb", "kl_wo_e"]
    for variant in ("sgvb", "kl_wo_e"):
        folder = out / variant
        model = VAE.from_pretrained(folder)
        assert model.latent_dim == 2 and set(json.loads((folder / "config.json").read_text())) == {
            "input_dim",
            "hidden_dims",
            "act_fun",
        }
        args = json.loads((folder / "training_args.json").read_text())
        assert args == recipe(epochs=2, kl_warmup_epochs=1.0, regularizer=variant).training_args()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert len(metrics["history"]) == 2 and metrics["train_images"] == 1024 and metrics["test_images"] == 500
        assert metrics["world_size"] == 1 and len(metrics["replica_weights_sha256"]) == 1
        assert {"train_nelbo", "train_rec", "train_kl", "test_nelbo", "test_rec", "test_kl"} <= set(
            metrics["history"][0]
        )
        card = ModelCard.load(folder / "README.md")
        assert card.data.license == "cc-by-sa-3.0" and card.data.eval_results[0].metric_type == "nelbo"
        assert "1,024 MNIST training images" in card.text and "60,000" not in card.text
        assert (folder / "curves.png").read_bytes()[:8] == PNG_MAGIC
        assert load_checkpoint(ck / variant / CKPT_NAME)["epoch"] == 2

    gv = ["--grad-variance", "--gv-batches", "1", "--gv-draws", "5"]
    evaluate = [str(out / "sgvb"), "--data-dir", str(mnist_root), "--limit", "300", "--iwae-k", "40", *gv, "--save"]
    assert evaluate_main(evaluate) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nelbo"] == pytest.approx(result["rec"] + result["kl"]) and result["kl"] > 0
    assert -result["iwae"]["log_likelihood"] < result["nelbo"]  # the K-sample bound is tighter than the ELBO
    by = result["grad_variance"]["by_regularizer"]
    assert by["score_function"]["variance"] > by["sgvb"]["variance"] > 0  # pathwise beats REINFORCE
    assert by["kl_wo_e"]["kl_variance"] == 0 and by["sgvb"]["kl_variance"] > 0  # the closed form is exact given x
    assert json.loads((out / "sgvb" / "eval.json").read_text())["nelbo"] == result["nelbo"]
    text = (out / "sgvb" / "README.md").read_text()
    assert "IWAE log-likelihood, K = 40" in text and "Gradient variance" in text and "first 300" in text


def test_the_binarized_protocol_trains_and_scores_on_binary_images(
    tmp_path: Path, mnist_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--regularizer", "kl_wo_e", "--binarize", "--epochs", "1", "--kl-warmup-epochs", "1", "--limit", "512"]
    argv += ["--test-limit", "200", "--data-dir", str(mnist_root), "--out", str(tmp_path), "--no-progress"]
    assert train_cli.main([*argv, "--ckpt-dir", str(tmp_path / "ck")]) == 0
    folder = tmp_path / "kl_wo_e"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["binarized_training"] and metrics["test_protocol"] == "binarized (seed 0)"
    capsys.readouterr()
    assert (
        evaluate_main([str(folder), "--data-dir", str(mnist_root), "--limit", "200", "--iwae-k", "20", "--save"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["protocol"] == "binarized"  # as the model was trained
    text = (folder / "README.md").read_text()
    assert "binarized once with seed 0" in text and "Davidson et al. 2018" in text and "−135.73" in text
    assert "--binarize" in text.split("Reproduce it with")[1]


def test_the_bundled_cards_reproduce_commands_rebuild_their_own_model() -> None:
    """Each bundled card's command, parsed by the training CLI, trains that architecture and estimator into a
    fresh folder (never over the bundled weights, never one into another's folder or checkpoint)."""
    outputs: dict[Path, Path] = {}
    folders = sorted(p.parent for p in (ROOT / "weights").rglob("model.safetensors"))
    assert len(folders) >= 4
    for folder in folders:
        text = " ".join((folder / "README.md").read_text().split())
        command = re.search(r"`python -m training\.train ([^`]*)`", text)
        assert command, folder
        args = train_cli.build_parser().parse_args(shlex.split(command.group(1)))
        trained = json.loads((folder / "training_args.json").read_text())
        assert all(getattr(args, k) == v for k, v in trained.items() if k != "device"), folder
        assert args.hidden_dims == json.loads((folder / "config.json").read_text())["hidden_dims"], folder
        out, ckpt = (ROOT / args.out / args.regularizer).resolve(), (ROOT / args.ckpt_dir / args.regularizer).resolve()
        assert not out.is_relative_to(ROOT / "weights"), folder
        outputs[out] = ckpt
    assert len(outputs) == len(set(outputs.values())) == len(folders)

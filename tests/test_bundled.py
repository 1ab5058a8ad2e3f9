"""The four bundled models: their weights are the ones trained before the re-cut, bit for bit, they load through
the new code unchanged and give the same outputs, and their folders hold what their cards say."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from vae_hub import VAE, VAEConfig

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ("sgvb", "kl_wo_e", "z4/sgvb", "z4/kl_wo_e")
WEIGHTS_SHA256 = {
    "sgvb": "84607d33caf3f5fd0f58e27f4e0d48d3ede5087f51f3e3e1b52019ff9d03ce55",
    "kl_wo_e": "4ca39255f13496bdf9a4b0176e06a37f57c53462047cf5cdcb8f6a50efacf3ca",
    "z4/sgvb": "e30caf3eb9a9c526fb93b18d8cf4cb07b775f6577c939f6e40834faf4625c371",
    "z4/kl_wo_e": "65797388877037bb0f21621f2cfa7e25830b7cde49f5f5a45cbd6b7fbfb3af28",
}
# Computed by the code before the re-cut (commit ebd611e) on the first 100 MNIST test digits: the sum of the
# reconstructions' pixels and of the posterior means and log-variances.
BEFORE = {
    "sgvb": (9824.519851920288, -35.35560046136379, -1319.7155709266663),
    "kl_wo_e": (9728.223529255325, -30.872295260429382, -1315.8795065879822),
    "z4/sgvb": (9453.677763344842, -20.32343863323331, -2093.5805325508118),
    "z4/kl_wo_e": (9481.23347629064, -16.308515027165413, -2101.2150723934174),
}


@pytest.mark.parametrize("name", BUNDLED)
def test_the_bundled_weights_are_unchanged_and_give_the_same_outputs(name: str, mnist_test) -> None:
    folder = ROOT / "weights" / name
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == WEIGHTS_SHA256[name]
    model = VAE.from_pretrained(folder)
    hidden = [128, 32, 16, 4 if name.count("/") == 0 else 8]
    assert model.config == VAEConfig(hidden_dims=hidden)
    assert json.loads((folder / "config.json").read_text()) == dataclasses.asdict(model.config)
    assert json.loads((folder / "training_args.json").read_text())["regularizer"] == name.split("/")[-1]
    x = mnist_test[0][:100]
    mu, logvar = model.encode(x)
    got = (model.reconstruct(x).double().sum().item(), mu.double().sum().item(), logvar.double().sum().item())
    assert got == pytest.approx(BEFORE[name], rel=1e-5)
    assert torch.is_grad_enabled()  # the inference methods switched gradients off only inside themselves


@pytest.mark.parametrize("variant", ("sgvb", "kl_wo_e"))
def test_the_binarized_models_hold_their_evaluation_and_the_readme_and_card_quote_it(variant: str) -> None:
    """weights/binarized/*: the original 2-D network trained on dynamically binarized MNIST, scored by IWAE at
    K = 5000 on the test set binarized once; the card's literature table and the README give its eval.json's numbers,
    and the app's handlers serve it in a model's place."""
    folder = ROOT / "weights" / "binarized" / variant
    model = VAE.from_pretrained(folder)
    assert model.config == VAEConfig()
    trained = json.loads((folder / "training_args.json").read_text())
    assert trained["binarize"] and trained["regularizer"] == variant
    ev = json.loads((folder / "eval.json").read_text())
    assert ev["protocol"] == "binarized" and ev["test_images"] == 10000 and ev["iwae"]["k"] == 5000
    ll, se, elbo = ev["iwae"]["log_likelihood"], ev["iwae"]["std_error"], -ev["nelbo"]
    assert elbo < ll < 0  # the ELBO bounds the IWAE estimate from below

    def minus(v: float) -> str:
        return f"{v:.2f}".replace("-", "−")

    card = (folder / "README.md").read_text()
    assert f"| this model ({variant}) | dynamic binarization | MLP 128-32-16 | {minus(ll)} | {minus(elbo)} |" in card
    assert "Davidson et al. 2018" in card
    readme = (ROOT / "README.md").read_text()
    assert f"{minus(ll)} ± {se:.2f}" in readme and minus(elbo) in readme

    from webapp import EXAMPLES_DIR
    from webapp.handlers import Handlers

    handlers = Handlers({"sgvb": model}, {"sgvb": f"binarized · {variant}"})
    example = "data:image/png;base64," + base64.b64encode((EXAMPLES_DIR / "7_0000.png").read_bytes()).decode()
    assert handlers.reconstruct(example).count("<img") == 2  # the input and its reconstruction

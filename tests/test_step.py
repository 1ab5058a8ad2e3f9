"""The hand-derived training step (training/step.py) against autograd on the same batch and noise."""

from __future__ import annotations

import pytest
import torch

from training.step import ACTIVATION_BACKWARD, ManualStep, supports
from training.trainer import Trainer
from vae_hub import VAE, Config, MNISTBatches
from vae_hub.config import ACTIVATIONS
from vae_hub.model import LOGVAR_MAX
from vae_hub.objectives import elbo_terms


def autograd_step(model: VAE, x: torch.Tensor, regularizer: str, beta: float, seed: int):
    out = model(x, generator=torch.Generator().manual_seed(seed))
    terms = elbo_terms(out.logits, x, out.mu, out.logvar, out.z, regularizer)
    loss = terms.loss.mean() if beta == 1.0 else (terms.rec + beta * terms.kl).mean()
    model.zero_grad(set_to_none=True)
    loss.backward()
    return loss.detach(), terms, {n: p.grad.clone() for n, p in model.named_parameters()}


def manual_step(model: VAE, x: torch.Tensor, regularizer: str, beta: float, seed: int):
    model.zero_grad(set_to_none=True)
    out = ManualStep(model, regularizer)(x, torch.Generator().manual_seed(seed), beta)
    return out.loss, out.terms, {n: p.grad.clone() for n, p in model.named_parameters()}


def assert_same(model: VAE, x: torch.Tensor, regularizer: str, beta: float) -> None:
    loss_a, terms_a, grads_a = autograd_step(model, x, regularizer, beta, seed=3)
    loss_m, terms_m, grads_m = manual_step(model, x, regularizer, beta, seed=3)
    torch.testing.assert_close(loss_m, loss_a)
    for a, m in zip(terms_a, terms_m):
        torch.testing.assert_close(m, a.detach())
    assert grads_m.keys() == grads_a.keys()
    for name, g in grads_a.items():
        assert g.abs().max() > 0, name  # a gradient that is all zeros would compare equal to a missing one
        torch.testing.assert_close(grads_m[name], g, rtol=1e-4, atol=1e-6 * g.abs().max().item(), msg=name)


@pytest.mark.parametrize("hidden", [[128, 32, 16, 4], [128, 32, 16, 8]], ids=["2d", "4d"])
@pytest.mark.parametrize("regularizer", ["sgvb", "kl_wo_e"])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_gradients_match_autograd(hidden: list[int], regularizer: str, beta: float) -> None:
    torch.manual_seed(0)
    model = VAE(Config(hidden_dims=hidden)).double()  # float64: differences are the derivation's, not rounding
    x = torch.rand(64, 784, dtype=torch.float64).round()
    assert_same(model, x, regularizer, beta)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_activation(act: str) -> None:
    torch.manual_seed(1)
    model = VAE(Config(act_fun=act, hidden_dims=[32, 16, 8])).double()
    assert supports(model)
    assert_same(model, torch.rand(16, 784, dtype=torch.float64), "sgvb", 1.0)


def test_clamped_logvar_gets_no_gradient() -> None:
    """Where log σ² is clamped, autograd passes no gradient to the encoder's log σ² outputs; neither may the step."""
    torch.manual_seed(2)
    model = VAE(Config(hidden_dims=[32, 16, 8])).double()
    with torch.no_grad():
        model.encoder[-1].bias[4:6] += 3 * LOGVAR_MAX  # two of the four log σ² far above the clamp
    assert_same(model, torch.rand(16, 784, dtype=torch.float64), "kl_wo_e", 1.0)


def test_refuses_what_it_cannot_derive() -> None:
    model = VAE(Config(hidden_dims=[32, 16, 8]))
    with pytest.raises(ValueError, match="regularizer"):
        ManualStep(model, "score_function")
    model.decoder[1] = torch.nn.SiLU(inplace=True)  # would overwrite the input its derivative is taken at
    assert not supports(model)
    model.decoder[1] = torch.nn.Hardswish()
    assert not supports(model)
    with pytest.raises(ValueError, match="autograd"):
        ManualStep(model, "sgvb")
    assert set(ACTIVATION_BACKWARD) == set(ACTIVATIONS.values())


def test_trainer_with_and_without_hand_derived_gradients_agree() -> None:
    """Two epochs through ``Trainer.fit`` each way, same seed and data: the same weights and metrics up to float
    rounding (the hand-derived step draws the same noise as the model's forward)."""
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(512, 28, 28, generator=gen) < 0.2).to(torch.uint8) * 255
    labels = torch.zeros(512, dtype=torch.long)
    config = Config(hidden_dims=[32, 16, 8], epochs=2, batch_size=128, kl_warmup_epochs=1)
    runs = []
    for hand_derived in (True, False):
        loader = MNISTBatches(images, labels, 128, shuffle=True, generator=torch.Generator())
        runs.append(Trainer(config, hand_derived=hand_derived).fit("sgvb", loader, progress=False))
    (fast, fast_history), (auto, auto_history) = runs
    for name, value in auto.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert fast_history[-1]["train_nelbo"] == pytest.approx(auto_history[-1]["train_nelbo"], rel=1e-5)

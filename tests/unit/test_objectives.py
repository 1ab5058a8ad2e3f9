"""The math: SGVB (estimator A) converges to the closed form (estimator B) in value and gradient, the score-function
baseline agrees in expectation and is noisier, and the IWAE bound is a bound."""

from __future__ import annotations

import math

import pytest
import torch

from vae_hub import VAE, bernoulli_nll, elbo_terms, iwae_bound, kl_wo_e, sgvb
from vae_hub.objectives import score_function_surrogate

M = 200_000  # Monte Carlo samples
Z_TOL = 5.0  # a 5-sigma band: a correct estimator fails it with probability < 1e-6 per coordinate


def _params(seed: int = 0, d: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64) - 0.5


def test_closed_form_matches_torch_distributions() -> None:
    mu, logvar = _params()
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(kl_wo_e(mu, logvar), torch.distributions.kl_divergence(q, p).sum(), atol=1e-12)
    assert kl_wo_e(torch.zeros(3), torch.zeros(3)).item() == 0.0  # q = p


def test_sgvb_is_log_q_minus_log_p() -> None:
    mu, logvar = _params()
    z = mu + torch.exp(0.5 * logvar) * torch.randn(4, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    expected = q.log_prob(z).sum() - torch.distributions.Normal(0.0, 1.0).log_prob(z).sum()
    assert torch.allclose(sgvb(mu, logvar, z), expected, atol=1e-10)


def test_sgvb_converges_to_closed_form() -> None:
    mu, logvar = _params(1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(
        M, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    est = sgvb(mu.expand(M, 4), logvar.expand(M, 4), z)
    stderr = est.std() / math.sqrt(M)
    assert abs(est.mean() - kl_wo_e(mu, logvar)) < Z_TOL * stderr and stderr < 0.01


@pytest.mark.parametrize("estimator", ["sgvb", "score_function"])
def test_gradients_agree_in_expectation(estimator: str) -> None:
    mu0, logvar0 = _params(2)
    mu = mu0.expand(M, 4).clone().requires_grad_()  # one leaf row per sample: .grad rows are per-sample gradients
    logvar = logvar0.expand(M, 4).clone().requires_grad_()
    z = mu + torch.exp(0.5 * logvar) * torch.randn(
        M, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    (sgvb if estimator == "sgvb" else score_function_surrogate)(mu, logvar, z).sum().backward()
    mu_e, logvar_e = mu0.clone().requires_grad_(), logvar0.clone().requires_grad_()
    kl_wo_e(mu_e, logvar_e).backward()
    for per_sample, exact in ((mu.grad, mu_e.grad), (logvar.grad, logvar_e.grad)):
        mean, stderr = per_sample.mean(0), per_sample.std(0) / math.sqrt(M)
        assert torch.all((mean - exact).abs() < Z_TOL * stderr), (mean, exact, stderr)


def test_score_function_has_higher_variance_than_sgvb() -> None:
    mu0, logvar0 = _params(3)
    variances = {}
    for name, fn in (("sgvb", sgvb), ("sf", score_function_surrogate)):
        mu, logvar = mu0.expand(20_000, 4).clone().requires_grad_(), logvar0.expand(20_000, 4).clone().requires_grad_()
        eps = torch.randn(20_000, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        fn(mu, logvar, mu + torch.exp(0.5 * logvar) * eps).sum().backward()
        variances[name] = mu.grad.var(0).sum().item()
    assert variances["sf"] > 2 * variances["sgvb"]


def test_reconstruction_is_the_summed_bernoulli_nll() -> None:
    logits, x = torch.randn(3, 784, dtype=torch.float64), torch.rand(3, 784, dtype=torch.float64)
    p = torch.sigmoid(logits)
    assert torch.allclose(bernoulli_nll(logits, x), -(x * p.log() + (1 - x) * (-p).log1p()).sum(-1), atol=1e-8)
    extreme = torch.tensor([[1e4, -1e4, 88.0, -88.0]], dtype=torch.float64)
    assert torch.isfinite(bernoulli_nll(extreme, torch.tensor([[0.0, 1.0, 0.5, 0.5]], dtype=torch.float64))).all()


def test_the_fast_reconstruction_formula_is_the_plain_one_in_value_and_gradient() -> None:
    from vae_hub import fast

    logits = torch.cat([torch.randn(4, 780, dtype=torch.float64) * 5, torch.tensor([[1e4, -1e4, 88.0, -88.0]] * 4)], 1)
    x = torch.cat([torch.rand(2, 784, dtype=torch.float64), (torch.rand(2, 784) > 0.5).double()])
    grads = []
    for nll in (bernoulli_nll, fast.nll_formula):  # as written, uncompiled
        leaf = logits.clone().requires_grad_()
        value = nll(leaf, x)
        value.sum().backward()
        grads.append((value.detach(), leaf.grad))
    assert torch.allclose(grads[0][0], grads[1][0], rtol=0, atol=1e-9) and torch.isfinite(grads[1][0]).all()
    assert torch.allclose(grads[0][1], grads[1][1], rtol=0, atol=1e-9)


def test_elbo_terms_add_up_and_refuse_what_they_cannot_score() -> None:
    model = VAE()
    x = torch.rand(5, 784)
    out = model(x)
    for name in ("sgvb", "kl_wo_e"):
        t = elbo_terms(out.logits, x, out.mu, out.logvar, out.z, name)
        assert t.loss.shape == (5,) and torch.allclose(t.loss, t.rec + t.kl)
    with pytest.raises(ValueError, match="unknown regularizer 'reinforce'"):
        elbo_terms(out.logits, x, out.mu, out.logvar, out.z, "reinforce")
    with pytest.raises(ValueError, match="uint8 pixels"):
        elbo_terms(out.logits, (x * 255).to(torch.uint8), out.mu, out.logvar, out.z, "sgvb")


def test_iwae_with_k1_is_the_elbo_and_more_samples_tighten_it() -> None:
    torch.manual_seed(0)
    model = VAE().eval()
    x = (torch.rand(8, 784) > 0.7).float()
    k1 = iwae_bound(model, x, k=1, generator=torch.Generator().manual_seed(1))
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        single = -(bernoulli_nll(model.decoder(z), x) + sgvb(mu, logvar, z))
    assert torch.allclose(k1, single, atol=1e-4)
    k_many = iwae_bound(model, x, k=500, chunk=64)
    elbo = torch.stack([-model.loss(x).loss.detach() for _ in range(50)]).mean(0)
    assert torch.all(k_many >= elbo - 0.5)  # IWAE_K ≥ E[ELBO], up to Monte Carlo noise
    assert not k_many.requires_grad and torch.is_grad_enabled()
    with pytest.raises(ValueError, match="pixel values must lie in"):
        iwae_bound(model, x * 255, k=2)  # README images as floats in 0..255: refused, never +12,635 nats

"""The math: SGVB (estimator A) converges to the closed form (estimator B), in value and in gradient."""

from __future__ import annotations

import math

import pytest
import torch

from vae_hub import VAE, iwae_bound, kl_wo_e, reconstruction, sgvb
from vae_hub.config import Config
from vae_hub.objectives import (
    REGULARIZERS,
    elbo_terms,
    get_regularizer,
    iwae_bound_reference,
    score_function_surrogate,
)

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
    g = torch.Generator().manual_seed(1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(M, 4, generator=g, dtype=torch.float64)
    est = sgvb(mu.expand(M, 4), logvar.expand(M, 4), z)
    stderr = est.std() / math.sqrt(M)
    assert abs(est.mean() - kl_wo_e(mu, logvar)) < Z_TOL * stderr
    assert stderr < 0.01  # the band is tight enough to mean something


@pytest.mark.parametrize("estimator", ["sgvb", "score_function"])
def test_gradients_agree_in_expectation(estimator: str) -> None:
    mu0, logvar0 = _params(2)
    # One leaf row per sample: the rows of .grad are then the per-sample gradients.
    mu = mu0.expand(M, 4).clone().requires_grad_()
    logvar = logvar0.expand(M, 4).clone().requires_grad_()
    g = torch.Generator().manual_seed(2)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(M, 4, generator=g, dtype=torch.float64)
    fn = sgvb if estimator == "sgvb" else score_function_surrogate
    fn(mu, logvar, z).sum().backward()

    mu_e, logvar_e = mu0.clone().requires_grad_(), logvar0.clone().requires_grad_()
    kl_wo_e(mu_e, logvar_e).backward()
    for per_sample, exact in ((mu.grad, mu_e.grad), (logvar.grad, logvar_e.grad)):
        mean, stderr = per_sample.mean(0), per_sample.std(0) / math.sqrt(M)
        assert torch.all((mean - exact).abs() < Z_TOL * stderr), (mean, exact, stderr)


def test_score_function_has_higher_variance_than_sgvb() -> None:
    mu0, logvar0 = _params(3)
    variances = {}
    for name, fn in (("sgvb", sgvb), ("sf", score_function_surrogate)):
        mu = mu0.expand(20_000, 4).clone().requires_grad_()
        logvar = logvar0.expand(20_000, 4).clone().requires_grad_()
        z = mu + torch.exp(0.5 * logvar) * torch.randn(
            20_000, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64
        )
        fn(mu, logvar, z).sum().backward()
        variances[name] = mu.grad.var(0).sum().item()
    assert variances["sf"] > 2 * variances["sgvb"]


def test_reconstruction_is_summed_bernoulli_nll() -> None:
    logits = torch.randn(3, 784, dtype=torch.float64)
    x = torch.rand(3, 784, dtype=torch.float64)
    p = torch.sigmoid(logits)
    manual = -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum(-1)
    assert torch.allclose(reconstruction(logits, x), manual, atol=1e-8)
    assert torch.allclose(reconstruction(logits, x.reshape(3, 1, 28, 28)), manual, atol=1e-8)


def test_reconstruction_gradient_and_extremes_match_torch_bce() -> None:
    logits = (torch.randn(4, 784, dtype=torch.float64) * 30).requires_grad_()  # many saturated pixels
    logits.data[0, :4] = torch.tensor([1e4, -1e4, 88.0, -88.0], dtype=torch.float64)
    x = torch.rand(4, 784, dtype=torch.float64)
    ours = reconstruction(logits, x)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-9)
    g = torch.randn(4, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad(ours, logits, g)
    (g_ref,) = torch.autograd.grad(ref, logits, g)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)
    small, x_small = torch.randn(2, 6, dtype=torch.float64, requires_grad=True), torch.rand(2, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda lg: reconstruction(lg, x_small), small)


def test_elbo_terms_add_up_and_registry() -> None:
    assert set(REGULARIZERS) == {"sgvb", "kl_wo_e"}
    with pytest.raises(ValueError, match="unknown regularizer"):
        get_regularizer("reinforce")
    model = VAE()
    x = torch.rand(5, 784)
    out = model(x)
    for name in REGULARIZERS:
        t = elbo_terms(out.logits, x, out.mu, out.logvar, out.z, name)
        assert t.loss.shape == (5,) and torch.allclose(t.loss, t.rec + t.kl)


def test_iwae_bound_is_tighter_than_elbo_and_k1_is_elbo() -> None:
    torch.manual_seed(0)
    model = VAE().eval()
    x = (torch.rand(8, 784) > 0.7).float()
    with torch.no_grad():
        mu, logvar = model.encode(x)
        torch.manual_seed(1)
        k1 = iwae_bound(model, x, k=1)
        torch.manual_seed(1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        single = -(reconstruction(model.decode_logits(z), x) + sgvb(mu, logvar, z))
    assert torch.allclose(k1, single, atol=1e-4)
    k_many = iwae_bound(model, x, k=500, chunk=64)  # chunking must not change the estimator
    elbo_avg = torch.stack([-(model.loss(x, "kl_wo_e").loss.detach()) for _ in range(50)]).mean(0)
    assert torch.all(k_many >= elbo_avg - 0.5)  # IWAE_K ≥ E[ELBO], up to Monte Carlo noise


def _iwae_pair(model: VAE, x: torch.Tensor, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """The fast and the plain bound on the same noise (same generator seed)."""
    fast = iwae_bound(model, x, generator=torch.Generator().manual_seed(5), **kw)
    plain = iwae_bound_reference(model, x, generator=torch.Generator().manual_seed(5), **kw)
    return fast, plain


@pytest.mark.parametrize(
    ("hidden_dims", "n", "k", "chunk", "threads"),
    [
        ([128, 32, 16, 4], 7, 300, 64, 1),  # the 2-D default; 7 images: blocks start at every image offset
        ([128, 32, 16, 8], 300, 10, 3, 1),  # 4-D; more rows per chunk than one block, a last short chunk
        ([64, 2], 5, 450, 450, 2),  # 1-D, another depth, on two worker threads
        ([32, 16, 12], 1, 5, 2, 1),  # 6-D, one image
    ],
)
def test_fast_iwae_equals_plain_formula_on_the_same_noise(
    hidden_dims: list[int], n: int, k: int, chunk: int, threads: int
) -> None:
    torch.manual_seed(0)
    model = VAE(Config(hidden_dims=hidden_dims)).double().eval()
    with torch.no_grad():  # logits far from 0, like a trained model's, so that the sigmoid products get small
        model.decoder[-1].weight.mul_(20)
    x = torch.rand(n, 784, dtype=torch.float64)
    x[: n // 2] = (x[: n // 2] > 0.6).double()  # binary and grey images
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fast, plain = _iwae_pair(model, x, k=k, chunk=chunk)
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before  # the worker threads' setting was undone
    assert fast.shape == (n,) and fast.dtype == torch.float64
    assert torch.allclose(fast, plain, rtol=1e-12, atol=1e-9), (fast - plain).abs().max()


def test_fast_iwae_in_float32_and_extreme_logits() -> None:
    torch.manual_seed(1)
    model = VAE().eval()
    x = (torch.rand(50, 784) > 0.7).float()
    fast, plain = _iwae_pair(model, x, k=40, chunk=16)
    # float32 rounding of sums over 784 pixels: ~1e-5 relative, far below the Monte Carlo noise (≫ 0.01 nats)
    assert torch.allclose(fast, plain, rtol=2e-6, atol=1e-4), (fast - plain).abs().max()
    with torch.no_grad():  # |logits| in the thousands: sigmoid(|l|) rounds to 1, softplus to max(l, 0)
        model.decoder[-1].weight.mul_(1000)
    fast, plain = _iwae_pair(model, x, k=8, chunk=8)
    assert torch.isfinite(fast).all() and torch.allclose(fast, plain, rtol=1e-5), (fast - plain).abs().max()


def test_fast_iwae_is_not_differentiated_and_keeps_grad_mode() -> None:
    model = VAE()
    x = torch.rand(3, 784)
    value = iwae_bound(model, x, k=4)
    assert not value.requires_grad and torch.is_grad_enabled()

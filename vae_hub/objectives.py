"""The evidence lower bound and its two KL estimators, in nats per image (Kingma & Welling 2014, "AEVB").

For an image x, encoder q(z|x) = N(μ, diag σ²), prior p(z) = N(0, I) and a Bernoulli decoder p(x|z):

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))                      (eq. 3)
    loss    = −ELBO = reconstruction + KL                               ("nELBO", minimised)

with one reparameterized sample z = μ + σ·ε, ε ~ N(0, I) (eq. 4), so that gradients flow through z. The two
estimators differ only in the KL term:

    sgvb     (estimator A, eq. 6):  KL ≈ log q(z|x) − log p(z) at that same z
    kl_wo_e  (estimator B, eq. 7):  KL = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), exact (appendix B)

Both are pathwise (reparameterization) gradients. SGVB is *not* a score-function estimator, whatever the original
text said; :func:`score_function_surrogate` is one, kept as a teaching baseline.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x|z) = −Σ_pixels [x log p + (1 − x) log(1 − p)], p = sigmoid(logits): per image, shape (N,)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; μ, diag σ²), per row."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I), per row."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def sgvb(mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """Estimator A: the KL sampled at the reparameterized z, log q(z|x) − log p(z). Unbiased, noisy."""
    return log_normal(z, mu, logvar) - log_standard_normal(z)


def kl_wo_e(mu: Tensor, logvar: Tensor, z: Tensor | None = None) -> Tensor:
    """Estimator B, "KL without expectation": the closed form. ``z`` is ignored (one signature for both)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


REGULARIZERS = {"sgvb": sgvb, "kl_wo_e": kl_wo_e}


class Terms(NamedTuple):
    """Per-image values in nats, shape (N,): loss = rec + kl = −ELBO."""

    loss: Tensor
    rec: Tensor
    kl: Tensor


def elbo_terms(
    logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, z: Tensor, regularizer: str, nll: Callable = bernoulli_nll
) -> Terms:
    """The reconstruction term and the chosen KL estimate side by side; ``x`` holds pixel values in [0, 1].
    ``nll`` may be :func:`vae_hub.fast.bernoulli_nll`, the same term compiled."""
    if regularizer not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {regularizer!r}; choose one of {list(REGULARIZERS)}")
    if x.dtype == torch.uint8:
        raise ValueError("x holds uint8 pixels: scale them to [0, 1] first (x / 255)")
    rec = nll(logits, x)
    kl = REGULARIZERS[regularizer](mu, logvar, z)
    return Terms(rec + kl, rec, kl)


def score_function_surrogate(mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """Teaching baseline: a surrogate whose gradient is the score-function (REINFORCE) estimator of the KL's.

    ∇_φ E_q[f(z)] = E_q[f(z) ∇_φ log q(z|x)], with z held fixed and f = log q − log p. Its value equals the SGVB
    estimate; its gradient has the same expectation and a far larger variance. Never used for training.
    """
    z = z.detach()
    logq = log_normal(z, mu, logvar)
    f = (logq - log_standard_normal(z)).detach()
    # (f + 1) ∇ log q: the "+1" is f's own dependence on φ, E_q[∇_φ log q] (zero in expectation)
    return f + (f + 1.0) * (logq - logq.detach())


def log_importance_weights(
    model: torch.nn.Module, z: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, nll: Callable = bernoulli_nll
) -> Tensor:
    """log w = log p(x|z) + log p(z) − log q(z|x) for samples z of shape (K, N, D)."""
    logits = model.decoder(z)
    return -nll(logits, x.expand_as(logits)) + log_standard_normal(z) - log_normal(z, mu, logvar)


@torch.no_grad()
def iwae_bound(
    model: torch.nn.Module,
    x: Tensor,
    k: int = 1000,
    chunk: int = 100,
    generator: torch.Generator | None = None,
    log_weights: Callable[..., Tensor] = log_importance_weights,
) -> Tensor:
    """The importance-weighted bound on log p(x) per image, in nats (Burda et al. 2016, eq. 8):

        log p(x) ≥ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

    drawn ``chunk`` samples at a time to bound memory; K = 1 is the ELBO. ``x``: images as :meth:`vae_hub.VAE.encode`
    takes them (uint8 is scaled by 1/255). :func:`vae_hub.fast.iwae_bound` is the same, compiled.
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be at least 1, got k={k}, chunk={chunk}")
    x = model.pixels(x)
    mu, logvar = model.encode(x)
    std = (0.5 * logvar).exp()
    log_w = []
    for start in range(0, k, chunk):
        eps = torch.randn((min(chunk, k - start), *mu.shape), generator=generator, device=mu.device)
        log_w.append(log_weights(model, mu + std * eps, x, mu, logvar))
    return torch.logsumexp(torch.cat(log_w), 0) - math.log(k)

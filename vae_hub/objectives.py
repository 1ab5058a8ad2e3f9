"""The evidence lower bound and its two regularizers, in nats per image.

For an image x with encoder q(z|x) = N(μ, diag σ²), prior p(z) = N(0, I) and Bernoulli decoder p(x|z):

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))          (Kingma & Welling 2014, eq. 3)
    loss    = −ELBO = reconstruction + regularizer          ("nELBO", minimised)

Both expectations are estimated with one reparameterized sample z = μ + σ·ε, ε ~ N(0, I), so gradients flow
through z (the reparameterization trick). The two regularizers differ only in how the KL is estimated:

* ``sgvb``     (estimator A): the Monte Carlo value log q(z|x) − log p(z) at that same z.
* ``kl_wo_e``  (estimator B, "KL without expectation"): the closed form, no sampling.

Note: SGVB is a *pathwise* (reparameterization) gradient estimator, not a score-function (REINFORCE)
estimator, whatever the original text said. ``score_function_surrogate`` below is a real score-function
estimator, kept as a clearly labelled teaching baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def reconstruction(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x|z) = Σ_pixels [softplus(l) − x·l], the Bernoulli NLL (BCE with logits l), per image. Shape (N,)."""
    return _BernoulliNLL.apply(logits, x.reshape_as(logits))


class _BernoulliNLL(torch.autograd.Function):
    """BCE with logits summed over pixels, ~3× faster than ``F.binary_cross_entropy_with_logits`` on the CPU.

    Why: that op's log1p runs unvectorized and autograd keeps several temporaries; it was half of a training
    step here. Forward: softplus(l) − x·l with softplus(l) = max(l, 0) + log(1 + e^−|l|), which is stable.
    Backward: ∂/∂l = sigmoid(l) − x (the data x gets no gradient).
    """

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(logits, x)
        nll = logits.abs().neg_().exp_().add_(1).log_()  # log(1 + e^−|l|), in place to save memory traffic
        nll += logits.clamp(min=0)
        nll -= x * logits
        return nll.sum(-1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        logits, x = ctx.saved_tensors
        return torch.sigmoid(logits).sub_(x).mul_(grad.unsqueeze(-1)), None


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; μ, diag σ²) = −½ Σ_j [log 2π + log σ²_j + (z_j − μ_j)² / σ²_j], per row."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I) = −½ Σ_j [log 2π + z_j²], per row."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def sgvb(mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """Estimator A: KL ≈ log q(z|x) − log p(z) at the reparameterized sample z. Unbiased, noisy. Shape (N,)."""
    return log_normal(z, mu, logvar) - log_standard_normal(z)


def kl_wo_e(mu: Tensor, logvar: Tensor, z: Tensor | None = None) -> Tensor:
    """Estimator B: KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), exact. Shape (N,).

    ``z`` is accepted (and ignored) so that both regularizers share one signature.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


Regularizer = Callable[[Tensor, Tensor, Tensor], Tensor]
REGULARIZERS: dict[str, Regularizer] = {"sgvb": sgvb, "kl_wo_e": kl_wo_e}


def get_regularizer(name: str) -> Regularizer:
    try:
        return REGULARIZERS[name]
    except KeyError:
        raise ValueError(f"unknown regularizer {name!r}; choose one of {sorted(REGULARIZERS)}") from None


class Terms(NamedTuple):
    """Per-image values in nats, shape (N,): loss = rec + kl = −ELBO."""

    loss: Tensor
    rec: Tensor
    kl: Tensor


def elbo_terms(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor, z: Tensor, regularizer: str) -> Terms:
    """Reconstruction and the chosen KL estimate, side by side: nELBO = rec + kl."""
    rec = reconstruction(logits, x)
    kl = get_regularizer(regularizer)(mu, logvar, z)
    return Terms(rec + kl, rec, kl)


def score_function_surrogate(mu: Tensor, logvar: Tensor, z: Tensor) -> Tensor:
    """Teaching baseline: the KL's gradient by the score-function (REINFORCE) estimator.

    ∇_φ E_q[f(z)] = E_q[f(z) ∇_φ log q(z|x)] with z *detached*, f = log q − log p. Its value equals the SGVB
    estimate; only its gradient differs (typically with far higher variance). Not used for training.
    """
    z = z.detach()
    f = (log_normal(z, mu, logvar) - log_standard_normal(z)).detach()
    logq = log_normal(z, mu, logvar)
    # Gradient of the surrogate: (f + 1) ∇log q. The "+1" is E_q[∇_φ f] = E_q[∇ log q] (zero in expectation),
    # from f's own dependence on φ; keeping it leaves the estimator exactly unbiased.
    return f + (f + 1.0) * (logq - logq.detach())


@torch.no_grad()
def iwae_bound(model: torch.nn.Module, x: Tensor, k: int = 1000, chunk: int = 100) -> Tensor:
    """Importance-weighted bound (Burda et al. 2016), per image, in nats (a log-likelihood, ≤ 0):

        log p(x) ≥ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

    computed with logsumexp over K samples, drawn ``chunk`` at a time to bound memory. K=1 gives the ELBO.
    """
    mu, logvar = model.encode(x)
    x = x.reshape(mu.shape[0], -1)
    std = torch.exp(0.5 * logvar)
    log_w_parts = []
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        z = mu + std * torch.randn((c, *mu.shape), device=mu.device, dtype=mu.dtype)  # (c, N, D)
        logits = model.decode_logits(z.reshape(-1, mu.shape[-1])).reshape(c, x.shape[0], -1)
        log_px_z = -reconstruction(logits, x.expand_as(logits))
        log_w_parts.append(log_px_z + log_standard_normal(z) - log_normal(z, mu, logvar))
    log_w = torch.cat(log_w_parts)  # (K, N)
    return torch.logsumexp(log_w, 0) - math.log(k)

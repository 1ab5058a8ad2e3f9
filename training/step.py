"""One training step's loss and gradients, derived by hand for the VAE's two MLPs (no autograd graph).

Why: the network is nine small Linear layers, so on a CPU a step is dominated by fixed per-op costs, not
arithmetic. Autograd adds its own per-node cost (recording the graph in the forward, the engine's queue and the
gradient accumulation in the backward): about 0.5 ms of a 4.5 ms step on one thread. The backward of an MLP is
short enough to write out, and the same matmuls then run with nothing between them (``benchmarks/bench_train.py``).

With B images, l the logits, p = sigmoid(l), c = β/B (β the KL weight) and ε the reparameterization noise,
z = μ + σ·ε, the gradients of mean_i [rec_i + β·kl_i] are

    ∂/∂l = (p − x) / B                                              (Bernoulli NLL)
    kl_wo_e (closed form):  ∂/∂μ = g_z + c·μ,   ∂/∂log σ² = g_z·½σε + c·½(σ² − 1)
    sgvb (log q(z|x) − log p(z) at z; with ε fixed log q = −½ Σ(log 2π + log σ² + ε²)):
                            ∂/∂μ = g_z + c·z,   ∂/∂log σ² = (g_z + c·z)·½σε − ½c

where g_z is the decoder's gradient at z. ``tests/test_step.py`` checks every gradient against autograd.
The values themselves come from :mod:`vae_hub.objectives`, the one definition of the ELBO. Used by
:class:`training.Trainer` in a single process; under DDP the trainer keeps autograd, which DDP hooks into.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from vae_hub import VAE
from vae_hub.model import LOGVAR_MAX, LOGVAR_MIN
from vae_hub.objectives import Terms, bernoulli_nll_and_probs, get_regularizer, training_objective

aten = torch.ops.aten

# d activation(a) / da applied to the upstream gradient g, from the activation's input a.
ACTIVATION_BACKWARD: dict[type[nn.Module], Callable[[Tensor, Tensor, nn.Module], Tensor]] = {
    nn.GELU: lambda g, a, m: aten.gelu_backward(g, a, approximate=m.approximate),
    nn.ReLU: lambda g, a, m: aten.threshold_backward(g, a, 0),
    nn.SiLU: lambda g, a, m: aten.silu_backward(g, a),
    nn.Tanh: lambda g, a, m: aten.tanh_backward(g, torch.tanh(a)),
    nn.ELU: lambda g, a, m: aten.elu_backward(g, m.alpha, 1, 1, False, a),
    nn.LeakyReLU: lambda g, a, m: aten.leaky_relu_backward(g, a, m.negative_slope, False),
    nn.Softplus: lambda g, a, m: aten.softplus_backward(g, a, m.beta, m.threshold),
}


class StepOutput(NamedTuple):
    loss: Tensor  # the scalar that was differentiated: mean_i [rec_i + β·kl_i]
    terms: Terms  # per-image values, as elbo_terms gives them
    mu: Tensor
    logvar: Tensor


def supports(model: nn.Module) -> bool:
    """Whether :class:`ManualStep` can train ``model``: a VAE whose encoder and decoder are Linear layers and
    activations it knows the derivative of."""
    return isinstance(model, VAE) and all(
        isinstance(m, nn.Linear) or (type(m) in ACTIVATION_BACKWARD and not getattr(m, "inplace", False))
        for m in (*model.encoder, *model.decoder)
    )  # an in-place activation would overwrite the input its derivative is taken at


def _forward(layers: nn.Sequential, h: Tensor, inputs: list[Tensor]) -> Tensor:
    for m in layers:
        inputs.append(h)
        h = torch.addmm(m.bias, h, m.weight.t()) if isinstance(m, nn.Linear) else m(h)
    return h


def _backward(layers: nn.Sequential, inputs: list[Tensor], g: Tensor, input_grad: bool) -> Tensor | None:
    """Sets every parameter's ``.grad`` from g = ∂loss/∂output; returns ∂loss/∂input if ``input_grad``."""
    for i in range(len(layers) - 1, -1, -1):
        m, a = layers[i], inputs[i]
        if isinstance(m, nn.Linear):
            m.weight.grad = g.t() @ a
            m.bias.grad = g.sum(0)
            if i == 0 and not input_grad:
                return None
            g = g @ m.weight
        else:
            g = ACTIVATION_BACKWARD[type(m)](g, a, m)
    return g


class ManualStep:
    """``ManualStep(model, regularizer)(x, generator, kl_weight)``: the loss of one batch, with every parameter's
    ``.grad`` set (replaced, not accumulated), ready for ``optimizer.step()``. It draws the noise exactly as
    ``model(x, generator=...)`` does, so the two paths see the same ε."""

    def __init__(self, model: VAE, regularizer: str) -> None:
        if not supports(model):
            raise ValueError("ManualStep needs a VAE of Linear layers and known activations; use autograd instead")
        self.kl = get_regularizer(regularizer)
        if regularizer not in ("sgvb", "kl_wo_e"):
            raise ValueError(f"ManualStep has no gradient for the regularizer {regularizer!r}")
        self.model = model
        self.regularizer = regularizer

    @torch.no_grad()
    def __call__(self, x: Tensor, generator: torch.Generator | None = None, kl_weight: float = 1.0) -> StepOutput:
        model = self.model
        x = model._flatten(x)
        enc_inputs: list[Tensor] = []
        stats = _forward(model.encoder, x, enc_inputs)
        d = model.latent_dim
        mu, raw_logvar = stats[:, :d], stats[:, d:]
        logvar = raw_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)  # as reparameterize
        std = torch.exp(0.5 * logvar)
        sigma_eps = std * eps
        z = mu + sigma_eps
        dec_inputs: list[Tensor] = []
        logits = _forward(model.decoder, z, dec_inputs)

        rec, p = bernoulli_nll_and_probs(logits, x)
        kl = self.kl(mu, logvar, z)
        terms = Terms(rec + kl, rec, kl)
        loss = training_objective(terms, kl_weight)

        n = len(x)
        g_z = _backward(model.decoder, dec_inputs, p.sub_(x).div_(n), input_grad=True)
        c = kl_weight / n
        if self.regularizer == "sgvb":
            g_mu = g_z.add_(z, alpha=c)
            g_logvar = g_mu * sigma_eps * 0.5 - 0.5 * c
        else:  # kl_wo_e
            g_logvar = g_z * sigma_eps * 0.5 + (std * std - 1) * (0.5 * c)
            g_mu = g_z.add_(mu, alpha=c)
        g_logvar.mul_((raw_logvar >= LOGVAR_MIN) & (raw_logvar <= LOGVAR_MAX))  # clamp passes no gradient outside
        _backward(model.encoder, enc_inputs, torch.cat([g_mu, g_logvar], 1), input_grad=False)
        return StepOutput(loss, terms, mu, logvar)

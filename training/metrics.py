"""The test metrics the trainer records every epoch (and ``training.evaluate`` reports): the single-sample
nELBO with the closed-form KL, and the active latent dimensions. Apart from the evaluation CLI so that importing
:mod:`training` does not import ``training.evaluate`` (``python -m`` would then warn that it runs a module twice).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from vae_hub import VAE
from vae_hub.objectives import elbo_terms

from . import distributed

EVAL_SEED = 1234  # the noise of the per-epoch test metrics, fixed so that epochs compare
ACTIVE_THRESHOLD = 0.01  # a latent dimension is active when its posterior mean varies more than this over the data


def model_batch(x: Tensor, model: VAE) -> Tensor:
    """A batch of images as the model's input: flat float32 rows on the model's device."""
    return x.reshape(x.shape[0], -1).to(model.device, torch.float32, non_blocking=True)


@torch.no_grad()
def nelbo_metrics(model: VAE, loader: Iterable, seed: int = EVAL_SEED) -> dict[str, float]:
    """Single-sample nELBO on ``loader`` with the closed-form KL (comparable across regularizers), nats/image."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(model.device).manual_seed(seed)
    rec_sum = kl_sum = 0.0
    n = 0
    for x, _ in loader:
        x = model_batch(x, model)
        out = model(x, generator=gen)
        terms = elbo_terms(out.logits, x, out.mu, out.logvar, out.z, "kl_wo_e")
        rec_sum += terms.rec.sum().item()
        kl_sum += terms.kl.sum().item()
        n += len(x)
    model.train(was_training)
    if distributed.active():  # each rank evaluated its shard of the test set
        rec_sum, kl_sum, n = distributed.all_reduce_sum(
            torch.tensor([rec_sum, kl_sum, n], dtype=torch.float64)
        ).tolist()
    if n == 0:
        raise ValueError("the test loader yielded no images")
    return {"nelbo": (rec_sum + kl_sum) / n, "rec": rec_sum / n, "kl": kl_sum / n}


@torch.no_grad()
def active_dimensions(model: VAE, loader: Iterable, threshold: float = ACTIVE_THRESHOLD) -> dict[str, Any]:
    """Per latent dimension, the variance of the posterior mean over ``loader``'s images (Burda et al. 2016's
    activity measure); a dimension with variance ≤ ``threshold`` carries no information (q(z_j|x) ≈ p(z_j))."""
    mus = torch.cat([model.encode(model_batch(x, model))[0].double() for x, _ in loader])
    if distributed.active():  # the variance over all ranks' shards, from the summed moments
        n, s, sq = distributed.all_reduce_sum(
            torch.stack([mus.new_full(mus.shape[1:], len(mus)), mus.sum(0), (mus**2).sum(0)])
        )
        variance = ((sq - s * s / n) / (n - 1)).tolist()
    else:
        variance = mus.var(0).tolist()
    return {"active_dims": sum(v > threshold for v in variance), "mu_variance": variance, "threshold": threshold}

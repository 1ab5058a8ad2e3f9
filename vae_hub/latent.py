"""Latent-space operations on a model, for research code as well as the app.

Decoding a grid over two latent dimensions is :func:`vae_hub.viz.latent_grid`; sampling the prior is
:meth:`vae_hub.VAE.sample`. This module adds the straight path between two digits' codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import VAE


@torch.no_grad()
def interpolate(model: VAE, xa: Tensor, xb: Tensor, steps: int) -> Tensor:
    """Decode the straight path from μ(xa) to μ(xb) in ``steps`` points (ends included): (steps, 1, 28, 28).

    ``xa`` and ``xb`` are single images (any shape holding 784 values in [0, 1]).
    """
    if not 2 <= steps <= 50:
        raise ValueError(f"the number of steps must be between 2 and 50, got {steps}")
    mu = model.encode(torch.stack([xa.reshape(-1), xb.reshape(-1)]).float().to(model.device))[0]
    t = torch.linspace(0, 1, steps, device=mu.device)[:, None]
    return model.decode((1 - t) * mu[0] + t * mu[1])

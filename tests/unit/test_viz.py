"""The latent-space helpers and the original API's figures on a tiny model: shapes, the sweep's layout, the
interpolation's ends, and figures that render without pyplot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vae_hub import VAE, VAEConfig
from vae_hub.viz import evaluate_model, grid_axis, interpolate, latent_grid, plot_latent_images, plot_samples


@pytest.fixture(scope="module")
def model() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(hidden_dims=[32, 8, 6])).eval()  # a 3-D latent


def test_the_grid_sweeps_two_dimensions_and_holds_the_others(model: VAE) -> None:
    grid = latent_grid(model, n=4, dims=(2, 0), span=1.5, base=[0.0, 0.7, 0.0])
    axis = grid_axis(4, 1.5)
    expected = torch.stack([torch.tensor([float(y), 0.7, float(x)]) for y in axis.flip(0) for x in axis])
    assert torch.allclose(grid, model.decode(expected)) and grid.shape == (16, 1, 28, 28)
    assert torch.allclose(grid_axis(3), torch.distributions.Normal(0, 1).icdf(torch.tensor([1 / 6, 0.5, 5 / 6])))
    for bad, message in (({"dims": (1, 1)}, "two different latent dimensions"), ({"base": [0.0]}, "3 values")):
        with pytest.raises(ValueError, match=message):
            latent_grid(model, n=3, **bad)


def test_interpolation_runs_from_one_code_to_the_other(model: VAE) -> None:
    a, b = torch.rand(28, 28), torch.rand(28, 28)
    path = interpolate(model, a, b, steps=5)
    assert path.shape == (5, 1, 28, 28)
    assert torch.allclose(path[0], model.reconstruct(a)[0]) and torch.allclose(path[-1], model.reconstruct(b)[0])
    with pytest.raises(ValueError, match="between 2 and 50"):
        interpolate(model, a, b, steps=1)


def test_the_original_figures_render(model: VAE, tmp_path: Path) -> None:
    evaluate_model(model, torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8), path=tmp_path / "recon.png")
    plot_latent_images(model, n=5, path=tmp_path / "grid.png")
    plot_samples(model, n=9, path=tmp_path / "samples.png")
    assert all((tmp_path / f).read_bytes()[:4] == b"\x89PNG" for f in ("recon.png", "grid.png", "samples.png"))

"""The network and its public interface: shapes, inputs of every kind, clear refusals, numerical safety, the
configurations, and the exact save → load round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from vae_hub import VAE, Config, VAEConfig


@pytest.fixture(scope="module")
def model() -> VAE:
    torch.manual_seed(0)
    return VAE().eval()


def _layers(seq: nn.Sequential) -> list:
    return [(m.in_features, m.out_features) if isinstance(m, nn.Linear) else type(m).__name__ for m in seq]


def test_the_default_is_the_original_network_layer_for_layer() -> None:
    m = VAE(Config(act_fun=nn.GELU).architecture())  # the original design passed the activation's class
    assert _layers(m.encoder) == [(784, 128), "GELU", (128, 32), "GELU", (32, 16), "GELU", (16, 4)]
    assert _layers(m.decoder) == [(2, 4), "GELU", (4, 16), "GELU", (16, 32), "GELU", (32, 128), "GELU", (128, 784)]
    assert sum(p.numel() for p in m.parameters()) == 211_200 and m.latent_dim == 2
    c = Config()
    assert (c.input_dim, c.hidden_dims, c.act_fun, c.batch_size, c.epochs, c.lr, c.device) == (
        784,
        [128, 32, 16, 4],
        "gelu",
        256,
        50,
        1e-3,
        "auto",
    )
    # a training Config passed straight to the model: config.json still holds the network only
    assert VAE(Config(epochs=3)).config == VAEConfig() and type(VAE(Config()).config) is VAEConfig


def test_the_4d_family_and_mu_logvar_halves() -> None:
    m = VAE(VAEConfig(hidden_dims=[128, 32, 16, 8])).eval()
    assert m.latent_dim == 4 and _layers(m.decoder)[0] == (4, 8)
    x = torch.rand(5, 784)
    mu, logvar = m.encode(x)
    out = m.encoder(x)
    assert torch.equal(mu, out[:, :4]) and torch.equal(logvar, out[:, 4:].clamp(-18, 10))


@pytest.mark.parametrize("shape", [(6, 784), (6, 28, 28), (6, 1, 28, 28)])
def test_shapes_and_plain_tensors(model: VAE, shape: tuple[int, ...]) -> None:
    x = torch.rand(shape)
    mu, logvar = model.encode(x)
    rec = model.reconstruct(x)
    assert mu.shape == logvar.shape == (6, 2) and rec.shape == (6, 1, 28, 28) and 0 <= rec.min() <= rec.max() <= 1
    assert not any(t.requires_grad for t in (mu, logvar, rec, model.decode(mu), model.sample(2)))
    assert torch.equal(rec, model.reconstruct(x))  # deterministic: decodes μ
    out = model(x.reshape(6, 784))  # forward is for training: it keeps the graph
    assert out.logits.shape == (6, 784) and out.logits.requires_grad


def test_images_of_every_kind_are_read_alike(model: VAE) -> None:
    pixels = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ref = model.reconstruct(pixels.float() / 255)
    for same in (pixels, pixels.numpy(), (pixels.numpy() / 255).astype(np.float64)):
        assert torch.allclose(model.reconstruct(same), ref, atol=1e-6)
    one = model.reconstruct(Image.fromarray(pixels[0].numpy()))
    assert one.shape == (1, 1, 28, 28) and torch.allclose(one, ref[:1], atol=1e-6)
    assert torch.allclose(model.reconstruct(pixels[0]), ref[:1], atol=1e-6)  # one (28, 28) image
    assert model.pixels(torch.ones(2, 784, dtype=torch.bool)).dtype == torch.float32


def test_what_cannot_be_right_is_refused_with_a_message_that_says_why(model: VAE) -> None:
    images = torch.randint(0, 256, (4, 784), dtype=torch.uint8).float()  # 0..255 as floats: not silently 255×
    for call in (model.encode, model.reconstruct, lambda x: model.loss(x)):
        with pytest.raises(ValueError, match=r"pixel values must lie in \[0, 1\].*divide floats in 0–255 by 255"):
            call(images)
    with pytest.raises(ValueError, match="expected images of shape"):
        model.encode(torch.rand(2, 100))
    with pytest.raises(ValueError, match="pixels must be uint8"):
        model.encode(torch.zeros(2, 784, dtype=torch.int32))
    with pytest.raises(ValueError, match="this model's latent is 2-D"):
        model.decode(torch.zeros(3, 4))


@pytest.mark.parametrize("value", [1e6, -1e6, 1e30])
def test_extreme_inputs_stay_finite(model: VAE, value: float) -> None:
    mu, logvar = model.encoder_stats(torch.full((2, 784), value))
    assert torch.isfinite(logvar.exp()).all() and torch.isfinite(model.decode(mu)).all()


def test_sample_is_reproducible_with_a_generator(model: VAE) -> None:
    a, b = (model.sample(5, generator=torch.Generator().manual_seed(3)) for _ in range(2))
    assert a.shape == (5, 1, 28, 28) and torch.equal(a, b)


@pytest.mark.parametrize("hidden", [[128, 32, 16, 4], [64, 8, 6]])
def test_save_load_round_trip_is_exact_and_config_json_is_the_architecture(tmp_path: Path, hidden: list[int]) -> None:
    arch = VAEConfig(hidden_dims=hidden, act_fun="silu")
    torch.manual_seed(1)
    m = VAE(arch).eval()
    m.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == dataclasses.asdict(arch)
    assert not any(p.suffix in (".bin", ".pt", ".pth", ".pkl") for p in tmp_path.iterdir())
    loaded = VAE.from_pretrained(tmp_path)
    assert loaded.config == arch and isinstance(loaded.config, VAEConfig) and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), loaded.state_dict().values()))
    card = (tmp_path / "README.md").read_text()
    assert all(s in card for s in ("library_name: vae-hub", "license: cc-by-sa-3.0", "- vae", "from_pretrained"))


def test_config_fields_carry_their_help_and_are_checked_for_kind_and_range() -> None:
    assert all(f.metadata.get("help") for f in dataclasses.fields(Config))
    assert all(f.metadata.get("help") for f in dataclasses.fields(VAEConfig))
    assert Config(act_fun=nn.LeakyReLU).act_fun == "leaky_relu"
    assert Config().architecture() == VAEConfig() and "lr" in Config().training_args()
    assert "hidden_dims" not in Config().training_args()
    bad = {
        "lr": (float("nan"), r"'lr' must be of type float \(finite\)"),
        "epochs": (2.0, r"'epochs' must be of type int"),
        "batch_size": (0, "batch_size must be at least 1"),
        "device": (3, "'device' must be of type str"),
        "regularizer": ("reinforce", "regularizer must be one of"),
        "init_logvar": (-40.0, r"init_logvar must be in \[-18.0, 10.0\]"),
        "act_fun": ("swishy", "unknown activation 'swishy'"),
        "hidden_dims": ([128, 32, 3], "it must be even; got 3"),
        "binarize": ("yes", "'binarize' must be of type bool"),
        "min_lr": (1.0, "min_lr must be between 0 and lr"),
    }
    for name, (value, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            Config(**{name: value})
    with pytest.raises(ValueError, match=r"kl_warmup_epochs \(10\) is longer than the run \(2 epochs\)"):
        Config(epochs=2, kl_warmup_epochs=10.0)
    with pytest.raises(ValueError, match="unknown keys"):
        VAEConfig.from_dict({"input_dim": 784, "regularizer": "sgvb"})

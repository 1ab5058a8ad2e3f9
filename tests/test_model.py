"""The network's interface: shapes, dtypes, numerical safety, and the exact save → load round trip."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vae_hub import VAE, Config
from vae_hub.config import resolve_device


@pytest.fixture(scope="module")
def model() -> VAE:
    torch.manual_seed(0)
    return VAE().eval()


@pytest.mark.parametrize("shape", [(6, 784), (6, 28, 28), (6, 1, 28, 28)])
def test_shapes_and_dtypes(model: VAE, shape: tuple[int, ...]) -> None:
    x = torch.rand(shape)
    out = model(x)
    assert out.logits.shape == (6, 784) and out.logits.dtype == torch.float32
    for t in (out.mu, out.logvar, out.z):
        assert t.shape == (6, 4) and t.dtype == torch.float32
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 4)
    rec = model.reconstruct(x)
    assert rec.shape == (6, 1, 28, 28) and rec.min() >= 0 and rec.max() <= 1
    assert torch.equal(rec, model.reconstruct(x))  # deterministic: decodes μ
    assert model.decode(torch.randn(3, 4)).shape == (3, 1, 28, 28)
    assert model.decode_logits(torch.randn(3, 4)).shape == (3, 784)


def test_uint8_like_and_double_inputs_are_accepted(model: VAE) -> None:
    assert model.reconstruct(torch.rand(2, 784, dtype=torch.float64)).dtype == torch.float32


def test_bad_shape_is_a_clear_error(model: VAE) -> None:
    with pytest.raises(ValueError, match="expected images of shape"):
        model.encode(torch.rand(2, 100))
    with pytest.raises(ValueError, match="expected images of shape"):
        model.encode(torch.rand(784))


def test_sample_is_reproducible_with_a_generator(model: VAE) -> None:
    a = model.sample(5, generator=torch.Generator().manual_seed(3))
    b = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5, 1, 28, 28) and torch.equal(a, b)


@pytest.mark.parametrize("value", [1e6, -1e6, 1e30, 0.0])
def test_extreme_inputs_stay_finite(model: VAE, value: float) -> None:
    x = torch.full((2, 784), value)
    mu, logvar = model.encode(x)
    assert torch.isfinite(logvar).all() and torch.isfinite(torch.exp(logvar)).all()
    assert torch.isfinite(model.reconstruct(x)).all()
    terms = model.loss(x.clamp(0, 1), "sgvb")
    assert torch.isfinite(terms.loss).all()


def test_config_defaults_and_activation_round_trip() -> None:
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
    assert c.latent_dim == 4 and c.activation is nn.GELU
    assert Config(act_fun=nn.GELU).act_fun == "gelu"  # the original API passed the class
    assert Config(act_fun=nn.ReLU).activation is nn.ReLU
    with pytest.raises(ValueError, match="unknown activation"):
        Config(act_fun="swishy")
    with pytest.raises(ValueError, match="unknown keys"):
        Config.from_dict({"input_dim": 784, "colour": "red"})
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu") == torch.device("cpu")


def test_architecture_matches_the_design() -> None:
    m = VAE(Config(act_fun=nn.GELU))
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    shapes = [(lin.in_features, lin.out_features) for lin in linears]
    assert shapes == [(784, 128), (128, 32), (32, 16), (16, 8), (4, 16), (16, 32), (32, 128), (128, 784)]
    assert any(isinstance(mod, nn.GELU) for mod in m.modules())


def test_save_load_round_trip_is_bit_identical(tmp_path, model: VAE) -> None:
    cfg = Config(hidden_dims=[64, 8, 3], act_fun="silu", regularizer="sgvb", seed=7)
    torch.manual_seed(1)
    m = VAE(cfg).eval()
    m.save_pretrained(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "config.json" in files and "model.safetensors" in files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == cfg.to_dict() and saved["act_fun"] == "silu" and saved["hidden_dims"] == [64, 8, 3]

    loaded = VAE.from_pretrained(tmp_path)
    assert loaded.config == cfg and not loaded.training
    x = torch.rand(16, 784)
    assert torch.equal(loaded.reconstruct(x), m.reconstruct(x))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(loaded(x, g1).logits, m(x, g2).logits)
    for (k1, v1), (k2, v2) in zip(m.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_model_card_metadata(tmp_path, model: VAE) -> None:
    model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    for needle in ("library_name: vae-hub", "license: cc-by-sa-3.0", "- mnist", "- vae"):
        assert needle in card

"""The network's interface: shapes, dtypes, numerical safety, and the exact save → load round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
        assert t.shape == (6, 2) and t.dtype == torch.float32
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 2)
    rec = model.reconstruct(x)
    assert rec.shape == (6, 1, 28, 28) and rec.min() >= 0 and rec.max() <= 1
    assert torch.equal(rec, model.reconstruct(x))  # deterministic: decodes μ
    assert model.decode(torch.randn(3, 2)).shape == (3, 1, 28, 28)
    assert model.decode_logits(torch.randn(3, 2)).shape == (3, 784)


def test_double_inputs_are_accepted(model: VAE) -> None:
    assert model.reconstruct(torch.rand(2, 784, dtype=torch.float64)).dtype == torch.float32


def test_uint8_images_are_scaled_to_unit_range(model: VAE) -> None:
    # load_mnist gives uint8 pixels 0..255: they must encode like the same images in [0, 1], not as 255× brighter.
    pixels = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mu_u8, logvar_u8 = model.encode(pixels)
    mu_f, logvar_f = model.encode(pixels.float() / 255)
    assert torch.equal(mu_u8, mu_f) and torch.equal(logvar_u8, logvar_f)
    assert not torch.allclose(model.encode(pixels.float())[0], mu_f)  # 0..255 floats are taken as they are


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
    assert c.latent_dim == 2 and c.activation is nn.GELU
    assert Config(act_fun=nn.GELU).act_fun == "gelu"  # the original API passed the class
    assert Config(act_fun=nn.ReLU).activation is nn.ReLU
    with pytest.raises(ValueError, match="unknown activation"):
        Config(act_fun="swishy")
    with pytest.raises(ValueError, match="unknown keys"):
        Config.from_dict({"input_dim": 784, "colour": "red"})
    assert resolve_device("cpu") == torch.device("cpu")


def _layers(seq: nn.Sequential) -> list:
    return [(m.in_features, m.out_features) if isinstance(m, nn.Linear) else type(m).__name__ for m in seq]


def test_default_config_builds_the_original_network_layer_for_layer() -> None:
    m = VAE(Config(act_fun=nn.GELU))
    # Encoder 784→128→32→16→4 with the last layer linear (μ and log σ² share it), decoder 2→4→16→32→128→784.
    assert _layers(m.encoder) == [(784, 128), "GELU", (128, 32), "GELU", (32, 16), "GELU", (16, 4)]
    assert _layers(m.decoder) == [(2, 4), "GELU", (4, 16), "GELU", (16, 32), "GELU", (32, 128), "GELU", (128, 784)]
    assert sum(p.numel() for p in m.parameters()) == 211_200
    assert m.latent_dim == Config().latent_dim == 2
    assert list(m.state_dict()) == [
        f"{part}.{i}.{w}"
        for part, n in (("encoder", 7), ("decoder", 9))
        for i in range(0, n, 2)
        for w in ("weight", "bias")
    ]


def test_mu_and_logvar_are_the_two_halves_of_the_last_encoder_layer() -> None:
    torch.manual_seed(0)
    m = VAE().eval()
    x = torch.rand(5, 784)
    out = m.encoder(x)
    mu, logvar = m.encode(x)
    assert torch.equal(mu, out[:, :2]) and torch.equal(logvar, out[:, 2:].clamp(-18, 10))


def test_the_4d_family() -> None:
    m = VAE(Config(hidden_dims=[128, 32, 16, 8]))
    assert m.latent_dim == 4
    assert _layers(m.encoder)[-1] == (16, 8)
    assert [s for s in _layers(m.decoder) if s != "GELU"] == [(4, 8), (8, 16), (16, 32), (32, 128), (128, 784)]
    assert m.sample(3).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("last", [3, 5, 1])
def test_an_odd_last_hidden_size_is_refused(last: int) -> None:
    with pytest.raises(ValueError, match=f"must be even; got {last}"):
        Config(hidden_dims=[128, 32, last])


@pytest.mark.parametrize("hidden", [[128, 32, 16, 4], [128, 32, 16, 8], [64, 8, 6]])
def test_save_load_round_trip_is_bit_identical(tmp_path, hidden: list[int]) -> None:
    cfg = Config(hidden_dims=hidden, act_fun="silu", regularizer="sgvb", seed=7, lr=0.5)
    torch.manual_seed(1)
    m = VAE(cfg).eval()
    m.save_pretrained(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "config.json" in files and "model.safetensors" in files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    saved = json.loads((tmp_path / "config.json").read_text())
    # config.json is the architecture (and the regularizer as a label), never the training settings.
    assert saved == {"input_dim": 784, "hidden_dims": hidden, "act_fun": "silu", "regularizer": "sgvb"}

    loaded = VAE.from_pretrained(tmp_path)
    assert loaded.config.architecture() == cfg.architecture() and not loaded.training
    assert loaded.latent_dim == hidden[-1] // 2
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


def test_the_library_imports_without_gradio_and_changes_no_global_state() -> None:
    """`import vae_hub` (and every module of it) pulls in no Gradio or pyplot, switches no matplotlib backend,
    and leaves the environment and Pillow's size limit as they were."""
    probe = (
        "import os, sys, PIL.Image, matplotlib; env = dict(os.environ); cap = PIL.Image.MAX_IMAGE_PIXELS; "
        "backend = matplotlib.rcParams._get_backend_or_none(); "
        "import vae_hub, vae_hub.viz, vae_hub.preprocess, vae_hub.latent, vae_hub.hub, vae_hub.objectives; "
        "assert 'gradio' not in sys.modules and 'matplotlib.pyplot' not in sys.modules, 'imported'; "
        "assert dict(os.environ) == env and PIL.Image.MAX_IMAGE_PIXELS == cap, 'globals'; "
        "assert matplotlib.rcParams._get_backend_or_none() == backend, 'backend'"
    )
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

"""The opt-in compiled paths (vae_hub.fast, Trainer(compile=True)) give the plain paths' numbers, and fall back to
them with one warning where no C++ compiler works. Slow: each compiles with torch.compile."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from vae_hub import VAE, MNISTBatches, VAEConfig, bernoulli_nll, fast, iwae_bound

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_the_compiled_bound_equals_the_plain_one() -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(hidden_dims=[32, 8, 4])).eval()
    x = (torch.rand(6, 784) > 0.6).float()
    plain = iwae_bound(model, x, k=20, chunk=10, generator=torch.Generator().manual_seed(5))
    compiled = fast.iwae_bound(model, x, k=20, chunk=10, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(compiled, plain, rtol=1e-5, atol=1e-4), (compiled - plain).abs().max()


def test_the_compiled_reconstruction_term_and_training_equal_the_plain_ones() -> None:
    from training import Trainer, recipe

    logits, x = torch.randn(64, 784) * 4, (torch.rand(64, 784) > 0.7).float()
    leaves = [logits.clone().requires_grad_() for _ in range(2)]
    plain, compiled = bernoulli_nll(leaves[0], x), fast.bernoulli_nll(leaves[1], x)
    (plain.sum() + compiled.sum()).backward()
    assert torch.allclose(compiled, plain, rtol=1e-5, atol=1e-3), (compiled - plain).abs().max()
    assert torch.allclose(leaves[1].grad, leaves[0].grad, atol=1e-6)
    # shuffled batches: compiling must not draw from the loader's generator (it did: another order than plain)
    batches = MNISTBatches((torch.rand(128, 784, generator=torch.Generator().manual_seed(0)) > 0.6).float(), None, 32)
    config = recipe(hidden_dims=[32, 8, 4], epochs=2, kl_warmup_epochs=0, batch_size=32)
    runs = [Trainer(config, compile=c).fit("sgvb", batches, progress=False).history for c in (False, True)]
    for key in ("train_nelbo", "train_rec", "train_kl"):
        assert [r[key] for r in runs[1]] == pytest.approx([r[key] for r in runs[0]], rel=1e-4), key


PROBE = """
import warnings, torch
from vae_hub import VAE, VAEConfig, fast, iwae_bound
from training import Trainer, recipe
model = VAE(VAEConfig(hidden_dims=[32, 8, 4])).eval()
x = (torch.rand(3, 784, generator=torch.Generator().manual_seed(0)) > 0.5).float()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    a = fast.iwae_bound(model, x, k=4, generator=torch.Generator().manual_seed(0))
    batches = [(x, torch.zeros(3))]
    trained = Trainer(recipe(hidden_dims=[32, 8, 4], epochs=1, kl_warmup_epochs=0), compile=True).fit(
        "sgvb", batches, progress=False).model
assert torch.allclose(a, iwae_bound(model, x, k=4, generator=torch.Generator().manual_seed(0)))
messages = [str(w.message) for w in caught if "torch.compile is not usable here" in str(w.message)]
assert len(messages) == 2, [str(w.message) for w in caught]
"""


def test_without_a_compiler_the_plain_paths_run_with_one_warning_each() -> None:
    env = {**os.environ, "CXX": "/nonexistent/c++", "TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp()}
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

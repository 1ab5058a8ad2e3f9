"""A small MNIST digit classifier, used only to *measure* how recognisable a digit is (never shipped as a weight).

``load_classifier()`` trains a LeNet-style CNN on MNIST's training set the first time (minutes: docs/robustness.md
has its time and accuracy) and caches it as safetensors under the checkout's ``runs/classifier/`` (ignored by git),
keyed on :data:`VERSION`, so that benchmarks and tests share one trained copy. It is a measuring instrument, so it
lives with the benchmarks, not in the package.

Each training digit is varied the way people's digits vary (see :func:`augment`), so that the instrument reads a
digit a little slanted, thicker or thinner, larger or off by a pixel as itself, rather than setting a ceiling of its
own: random rotations, stroke widths, scales and shifts. Only the training set is augmented, deterministically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import Tensor, nn
from tqdm.auto import tqdm

from vae_hub import load_mnist

VERSION = "lenet-v2"  # change it whenever the architecture or the recipe changes: the cache is keyed on it (v2 is
# the one-thread training below; an early copy trained on two threads differed in a few weights)
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "runs" / "classifier"  # <checkout>/runs, beside benchmarks/
EPOCHS, BATCH, LR, SEED = 3, 128, 2e-3, 0
MAX_SHIFT, MAX_ANGLE, MAX_SCALE = 2.0, 18.0, 0.1  # pixels, degrees, ± fraction of the size
# Stroke width changes on a 2× grid, in 28-pixel units: eroded by 1 pixel, kept, thickened by 1 or 2, with these odds.
WIDTH_ODDS = (0.2, 0.4, 0.25, 0.15)


class DigitCNN(nn.Module):
    """Two 5×5 conv + max-pool stages and two linear layers; logits for the ten digits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (N, 1, 28, 28) or (N, 784), floats in [0, 1] or uint8 0–255. Returns logits (N, 10)."""
        return self.net(to_unit(x).reshape(-1, 1, 28, 28))


def to_unit(x: Tensor) -> Tensor:
    """uint8 pixels → floats in [0, 1]; floats as they are."""
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Each (N, 1, 28, 28) digit with a random stroke width (see :data:`WIDTH_ODDS`), then rotated by up to
    ``MAX_ANGLE`` degrees, scaled by up to ``MAX_SCALE`` and shifted by up to ``MAX_SHIFT`` pixels either way.

    The work is done on a 2× grid and box-reduced, so a width change of one pixel and the resampling stay smooth.
    """
    n, f = len(x), nn.functional
    big = f.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    widths = torch.stack([-f.max_pool2d(-big, 3, 1, 1), big, f.max_pool2d(big, 3, 1, 1), f.max_pool2d(big, 5, 1, 2)])
    big = widths[torch.multinomial(torch.tensor(WIDTH_ODDS), n, True, generator=gen), torch.arange(n)]
    angle, scale, dy, dx = (2 * torch.rand(4, n, generator=gen) - 1) * torch.tensor(
        [[MAX_ANGLE * math.pi / 180], [MAX_SCALE], [MAX_SHIFT / 14], [MAX_SHIFT / 14]]
    )  # shifts in grid_sample's units: the image spans [-1, 1], 28 pixels
    cos, sin, inv = torch.cos(angle), torch.sin(angle), 1 / (1 + scale)
    # theta maps each output position to where it is read from in the input: the inverse of the wanted motion
    theta = torch.stack([torch.stack([cos * inv, sin * inv, -dx], 1), torch.stack([-sin * inv, cos * inv, -dy], 1)], 1)
    grid = f.affine_grid(theta, list(big.shape), align_corners=False)
    return f.avg_pool2d(f.grid_sample(big, grid, align_corners=False), 2).clamp(0, 1)


def train_classifier(data_root: str | os.PathLike | None = None, progress: bool = True) -> DigitCNN:
    """Train :class:`DigitCNN` on MNIST's training set (Adam, a few epochs, :func:`augment`); deterministic.

    It trains on one CPU thread: the convolutions' sums are split by thread, so two threads give other weights
    (and the benchmarks read a few digits differently). About 90 s here.
    """
    images, labels = load_mnist("train", data_root)
    x = to_unit(images)[:, None]
    gen = torch.Generator().manual_seed(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(x, labels, gen, progress)
    finally:
        torch.set_num_threads(threads)


def _train(x: Tensor, labels: Tensor, gen: torch.Generator, progress: bool) -> DigitCNN:
    with torch.random.fork_rng():  # seed the weights' initialisation without touching the caller's RNG
        torch.manual_seed(SEED)
        model = DigitCNN()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=EPOCHS * -(-len(x) // BATCH))
        model.train()
        bar = tqdm(total=EPOCHS * len(x), desc="training the MNIST classifier", unit="img", disable=not progress)
        for _ in range(EPOCHS):
            for idx in torch.randperm(len(x), generator=gen).split(BATCH):
                loss = nn.functional.cross_entropy(model(augment(x[idx], gen)), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.update(len(idx))
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        bar.close()
    return model.eval()


def load_classifier(
    data_root: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None, progress: bool = True
) -> DigitCNN:
    """The measurement classifier in eval mode on CPU: from the cache, or trained (and cached) on first use."""
    path = Path(cache_dir or DEFAULT_CACHE) / f"mnist_cnn_{VERSION}.safetensors"
    model = DigitCNN()
    if path.is_file():
        try:
            model.load_state_dict(load_file(path))
            return model.eval()
        except (OSError, RuntimeError, ValueError):
            pass  # a truncated or stale cache file: train again and overwrite it
    model = train_classifier(data_root, progress)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(save(state, metadata={"version": VERSION}))
    os.replace(tmp, path)  # a concurrent reader never sees half a file
    return model


@torch.no_grad()
def predict(clf: nn.Module, images: Tensor, batch: int = 1000) -> Tensor:
    """Predicted labels (N,) int64 for images (N, 1, 28, 28) or (N, 784) in [0, 1] (or uint8)."""
    clf.eval()
    return torch.cat([clf(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])

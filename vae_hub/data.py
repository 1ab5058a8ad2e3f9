"""MNIST through torchvision's own loader, held in memory as one tensor and batched by indexing.

A per-item ``ToTensor`` through a ``DataLoader`` spends most of an epoch in Python; indexing one pre-converted
tensor costs microseconds per batch. Where the files are looked for, and read offline: :func:`prepare_root`.
"""

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
BINARIZED_TEST_SEED = 0  # the one binarization of the test set that every reported number uses


class DataError(RuntimeError):
    """MNIST is missing or unreadable; the message says where we looked and how to fix it."""


def cache_dir() -> Path:
    """Where derived files go: ``$VAE_HUB_CACHE``, else ``$XDG_CACHE_HOME/vae_hub``, else ``~/.cache/vae_hub``."""
    base = os.environ.get("VAE_HUB_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "vae_hub")
    return Path(base).expanduser()


def prepare_root(root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """A root that torchvision reads offline, extracting the official ``.gz`` files first if that is all there is."""
    root = Path(root or os.environ.get("VAE_HUB_DATA") or "data").expanduser()
    raw = root / "MNIST" / "raw"
    if all((raw / name).is_file() for name in RAW_FILES):
        return root
    if all((raw / f"{name}.gz").is_file() for name in RAW_FILES):
        # A folder marked read-only (a shared data set) stays untouched, even for root, who may write anywhere.
        target = root if os.access(raw, os.W_OK) and raw.stat().st_mode & 0o200 else cache_dir() / "data"
        out = target / "MNIST" / "raw"
        out.mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            if (out / name).is_file():
                continue
            try:  # into a temporary file renamed into place: a crash never leaves half a file
                with gzip.open(raw / f"{name}.gz") as fin, tempfile.NamedTemporaryFile(dir=out, delete=False) as f:
                    shutil.copyfileobj(fin, f)
                os.replace(f.name, out / name)
            except (OSError, EOFError) as e:
                raise DataError(f"cannot decompress {raw / name}.gz ({e}): download MNIST again") from e
        return target
    why = ""
    if download:
        from torchvision.datasets import MNIST

        try:
            MNIST(str(root), train=True, download=True)
            return root
        except Exception as e:  # torchvision raises RuntimeError, URLError or OSError depending on the failure
            why = f" Download failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}."
    raise DataError(
        f"MNIST not found: no {RAW_FILES[0]}[.gz] and the other three official files in {raw.resolve()}.{why} "
        "Pass --data-dir / root=, or set VAE_HUB_DATA to a folder holding MNIST/raw/ (e.g. ../shared/data), or run "
        "where torchvision can download it."
    )


def load_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = True
) -> tuple[Tensor, Tensor]:
    """One split as ``(images uint8 (N, 28, 28), labels int64 (N,))``, read by ``torchvision.datasets.MNIST``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    from torchvision.datasets import MNIST

    ready = prepare_root(root, download)
    try:
        ds = MNIST(str(ready), train=split == "train", download=False)
    except Exception as e:  # a corrupt IDX file fails inside torchvision with assorted errors
        raise DataError(f"the MNIST files in {ready / 'MNIST' / 'raw'} are corrupt ({e}): download them again") from e
    if ds.data.dtype != torch.uint8 or ds.data.shape[1:] != (28, 28) or len(ds.data) != len(ds.targets):
        raise DataError(f"the MNIST files in {ready} have unexpected shapes {tuple(ds.data.shape)}")
    return ds.data, ds.targets


def binarize(images: Tensor, seed: int = BINARIZED_TEST_SEED) -> Tensor:
    """A fixed Bernoulli draw of grey-level images (uint8 or [0, 1]): the binarized-MNIST test protocol."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return torch.bernoulli(x, generator=torch.Generator(x.device).manual_seed(seed))


class MNISTBatches:
    """Re-iterable ``(x, y)`` batches from in-memory images: x float (B, 784) in [0, 1], y int64 (B,).

    ``generator`` (a CPU ``torch.Generator``) drives the shuffling: an epoch's order is reproducible and resumable
    from its state. ``binarize=True`` draws each image afresh from Bernoulli(x) every epoch (dynamic binarization),
    from a seed taken from ``generator`` (so resuming and every torchrun process agree). Under torchrun,
    ``rank``/``world_size`` keep this process's share: every rank draws the same permutation and takes an equal
    block of it (the last ``n % world_size`` images sit the epoch out, so all take the same steps)."""

    def __init__(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        batch_size: int = 256,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
        binarize: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        x = images.reshape(len(images), -1)
        self.x = (x.float() / 255 if x.dtype == torch.uint8 else x.float()).to(device)
        self.y = (labels if labels is not None else torch.zeros(len(x), dtype=torch.long)).to(device)
        self.batch_size, self.shuffle, self.binarize = batch_size, shuffle, binarize
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.rank, self.world_size = rank, world_size

    def _order(self) -> Tensor:
        n, size, rank = len(self.x), self.world_size, self.rank
        if not self.shuffle:
            return torch.tensor_split(torch.arange(n), size)[rank]  # every image once, over all the ranks
        per = n // size
        return torch.randperm(n, generator=self.generator)[rank * per : (rank + 1) * per]

    def __len__(self) -> int:
        n = len(self.x) // self.world_size if self.shuffle else len(self._order())
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self._order().to(self.x.device)
        noise = None
        if self.binarize:
            seed = int(torch.randint(2**62, (1,), generator=self.generator)) + self.rank
            noise = torch.Generator(self.x.device).manual_seed(seed)
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            x = self.x.index_select(0, idx)  # index_select: faster than x[idx] on the CPU
            yield (torch.bernoulli(x, generator=noise) if noise is not None else x), self.y.index_select(0, idx)


def mnist_batches(
    split: str = "train",
    root: str | os.PathLike | None = None,
    batch_size: int = 256,
    shuffle: bool | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    binarize: bool = False,
) -> MNISTBatches:
    """Load a split (its first ``limit`` images) as :class:`MNISTBatches`; shuffled for training by default."""
    images, labels = load_mnist(split, root)
    shuffle = split == "train" if shuffle is None else shuffle
    gen = torch.Generator().manual_seed(seed)
    return MNISTBatches(images[:limit], labels[:limit], batch_size, shuffle, gen, device, binarize)

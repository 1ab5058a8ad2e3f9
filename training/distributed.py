"""Data-parallel training on PyTorch's own engine: ``torchrun`` starts the processes, this module joins them.

Under ``torchrun`` (``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in the environment) :func:`setup` joins the process
group (gloo on the CPU, nccl on CUDA, each process on GPU ``LOCAL_RANK``); the trainer then wraps the model in
``DistributedDataParallel``, which averages the gradients. Without ``torchrun`` nothing here does anything, so
the one-process path is exactly the plain loop.

Every rank seeds the same initial weights and the same per-epoch permutation and keeps its own slice of it
(:class:`ShardedBatches`): all in memory, no DataLoader, no DistributedSampler.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vae_hub import MNISTBatches


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; ``World()`` is the single process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, weights, cards and figures."""
        return self.rank == 0


def world_from_env() -> World:
    """The world ``torchrun`` describes in the environment, or the single process when it did not start us."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as e:
        raise RuntimeError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers ({e})") from e
    if size < 1 or not 0 <= rank < size or local < 0:
        raise RuntimeError(f"inconsistent torchrun environment: WORLD_SIZE={size}, RANK={rank}, LOCAL_RANK={local}")
    return World(rank, size, local)


def setup(world: World, device: torch.device) -> torch.device:
    """Join the process group (gloo on the CPU, nccl on CUDA) and return this rank's device."""
    if world.size == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    elif device.type == "cpu":
        dist.init_process_group("gloo")
    else:
        raise RuntimeError(f"distributed training runs on cpu or cuda, not {device.type}")
    return device


def teardown() -> None:
    """Leave the process group (also after an error, so that the other ranks are not left waiting)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _comm_device(t: Tensor) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device


def all_reduce_sum(t: Tensor) -> Tensor:
    """``t`` summed over the ranks (``t`` itself in one process)."""
    if not active():
        return t
    moved = t.to(_comm_device(t))
    dist.all_reduce(moved)
    return moved.to(t.device)


def all_gather(t: Tensor) -> list[Tensor]:
    """Every rank's ``t`` (same shape on all ranks), in rank order, on ``t``'s device."""
    if not active():
        return [t]
    moved = t.to(_comm_device(t))
    out = [torch.empty_like(moved) for _ in range(dist.get_world_size())]
    dist.all_gather(out, moved)
    return [o.to(t.device) for o in out]


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the model's tensors (state_dict order, float bytes on the CPU): equal digests, equal weights."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def replica_digests(model: nn.Module) -> list[str]:
    """Each rank's :func:`weights_digest`, gathered: DDP's promise is that they are all equal."""
    own = torch.frombuffer(bytearray(bytes.fromhex(weights_digest(model))), dtype=torch.uint8)
    return [bytes(t.tolist()).hex() for t in all_gather(own)]


class ShardedBatches(MNISTBatches):
    """:class:`vae_hub.MNISTBatches` over this rank's slice of each epoch's order.

    Training (``shuffle=True``): every rank draws the same seeded permutation and keeps the ``rank``-th of
    ``size`` equal blocks; the last ``n % size`` images of the permutation sit the epoch out, so every rank
    takes the same number of steps (DDP needs that). Evaluation (``shuffle=False``): contiguous blocks that
    cover every image once; the metrics are summed over the ranks.
    """

    def __init__(self, *args: object, world: World, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.world = world

    def _indices(self) -> Tensor:
        n, size, rank = len(self.x), self.world.size, self.world.rank
        if self.shuffle:
            per = n // size
            return torch.randperm(n, generator=self.generator)[rank * per : (rank + 1) * per]
        return torch.tensor_split(torch.arange(n), size)[rank]

    def __len__(self) -> int:
        n, b = len(self.x) // self.world.size if self.shuffle else len(self._indices()), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self._indices().to(self.x.device)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for i in range(0, stop, self.batch_size):
            idx = order[i : i + self.batch_size]
            yield self.x[idx], self.y[idx]

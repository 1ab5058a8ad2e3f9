"""The training loop, nanoGPT-style: plain PyTorch and autograd, one path for one process and for ``torchrun``.

``Trainer(config).fit(regularizer, train_loader, test_loader)`` trains a fresh :class:`vae_hub.VAE` and returns
``(model, history)``. Every epoch can end in an atomic checkpoint (``ckpt_dir``) from which ``resume=True``
continues bit-identically. All randomness comes from seeded, checkpointed sources: torch's global RNG (the initial
weights), the loader's generator (shuffling and binarization) and one generator for the reparameterization noise.
Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``; each rank trains on its share of each epoch
with its own noise, and rank 0 alone writes.
"""

import dataclasses
import functools
import hashlib
import io
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor
from tqdm.auto import tqdm

from vae_hub import VAE, Config, fast
from vae_hub.hub import first_line
from vae_hub.objectives import bernoulli_nll, elbo_terms, kl_wo_e

CKPT_NAME = "checkpoint.pt"
EVAL_SEED = 1234  # the noise of the per-epoch test metrics, fixed so that epochs compare
ACTIVE_THRESHOLD = 0.01  # a latent dimension is active when its posterior mean varies more than this over the data


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


class CheckpointError(TrainingError):
    """A checkpoint that cannot be read or does not fit the run."""


class FitResult(NamedTuple):
    model: VAE
    history: list[dict[str, Any]]


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA, then Apple MPS, then the CPU; an explicit device must exist here."""
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if name == "auto":
        return torch.device(next(kind for kind, ok in available.items() if ok))
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in available:
        raise TrainingError(f"device {name!r} cannot train: use auto, cpu, cuda, cuda:N or mps")
    if not available[device.type] or (device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count()):
        raise TrainingError(f"device {name!r} is not available on this machine (try --device auto)")
    return device


def lr_at(cfg: Config, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    warm = cfg.warmup_epochs * steps_per_epoch
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1.0, total_steps - warm))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def kl_weight_at(cfg: Config, step: int, steps_per_epoch: int) -> float:
    """The KL term's weight β: linear from 0 to 1 over ``kl_warmup_epochs``, then 1."""
    warm = cfg.kl_warmup_epochs * steps_per_epoch
    return 1.0 if step >= warm else (step + 1) / warm


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(t: Tensor) -> Tensor:
    """``t`` summed over the ranks (``t`` itself in one process)."""
    if distributed():
        t = t.clone()
        dist.all_reduce(t)
    return t


def batch(x: Tensor, model: VAE) -> Tensor:
    return x.reshape(len(x), -1).to(model.device, torch.float32, non_blocking=True)


@torch.no_grad()
def nelbo_metrics(model: VAE, loader: Iterable, seed: int = EVAL_SEED) -> dict[str, float]:
    """Single-sample nELBO with the closed-form KL (comparable across estimators), in nats per image."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(model.device).manual_seed(seed)
    sums = torch.zeros(3, dtype=torch.float64, device=model.device)
    for x, _ in loader:
        terms = model.loss(x, "kl_wo_e", gen)
        sums += torch.stack([terms.rec.sum(), terms.kl.sum(), terms.rec.new_tensor(len(x))]).double()
    model.train(was_training)
    rec, kl, n = all_reduce_sum(sums).tolist()
    if n == 0:
        raise ValueError("the test loader yielded no images")
    return {"nelbo": (rec + kl) / n, "rec": rec / n, "kl": kl / n}


@torch.no_grad()
def active_dimensions(model: VAE, loader: Iterable, threshold: float = ACTIVE_THRESHOLD) -> dict[str, Any]:
    """Per latent dimension, the variance of μ over the data (Burda et al. 2016's activity): a dimension with
    variance ≤ ``threshold`` carries no information about x."""
    mus = torch.cat([model.encoder_stats(batch(x, model))[0].double() for x, _ in loader])
    n, s, sq = all_reduce_sum(torch.stack([mus.new_full(mus.shape[1:], len(mus)), mus.sum(0), (mus**2).sum(0)]))
    variance = ((sq - s * s / n) / (n - 1)).tolist()
    return {"active_dims": sum(v > threshold for v in variance), "mu_variance": variance, "threshold": threshold}


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's tensors: equal digests, equal weights."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode() + value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


HISTORY_KEYS = {"epoch", "lr", "kl_weight", "train_objective", "train_nelbo", "train_rec", "train_kl", "seconds"}
TEST_KEYS = {"test_nelbo", "test_rec", "test_kl", "active_dims"}


def check_history(history: Any, epochs: int) -> None:
    """The history a checkpoint brings: one record per completed epoch, each with the trainer's keys and numbers."""
    records = len(history) if isinstance(history, list) else "no"
    if records != epochs:
        raise ValueError(f"it is at epoch {epochs} but its history has {records} records")
    for i, record in enumerate(history, 1):
        ok = isinstance(record, dict) and HISTORY_KEYS <= record.keys() <= HISTORY_KEYS | TEST_KEYS
        ok = ok and record["epoch"] == i and all(type(v) in (int, float) and math.isfinite(v) for v in record.values())
        if not ok:
            raise ValueError(f"history record {i} is not the record of epoch {i}")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` into a temporary file renamed over ``path``: a reader sees the old file or the new one."""
    buf = io.BytesIO()
    torch.save(state, buf)  # in memory first: a failed write is then a plain OSError
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's contents (tensors and plain values only: ``weights_only=True``, never arbitrary pickles)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or type(state.get("epoch")) is not int or state["epoch"] < 1:
            raise ValueError("it holds no completed epoch")
        check_history(state.get("history"), state["epoch"])
        return state
    except Exception as e:
        raise CheckpointError(f"cannot resume from {path}: {first_line(e)}; delete it to start afresh") from e


def elbo_pass(
    net: torch.nn.Module, x: Tensor, eps: Tensor, beta: Tensor, regularizer: str, nll: Callable = bernoulli_nll
) -> tuple[Tensor, Tensor]:
    """One reparameterized pass, z = μ + σ·ε: the batch's loss, mean(rec + β·KL), and the sums that the epoch's
    record reports (objective, reconstruction, closed-form KL), detached."""
    out = net(x, eps=eps)
    terms = elbo_terms(out.logits, x, out.mu, out.logvar, out.z, regularizer, nll)
    kl = terms.kl if regularizer == "kl_wo_e" else kl_wo_e(out.mu, out.logvar)
    sums = torch.stack([terms.loss.sum(), terms.rec.sum(), kl.sum()]).detach()
    return (terms.rec + beta * terms.kl).mean(), sums  # β < 1 only during the KL warm-up


def _kept(ckpt: Path | None) -> str:
    if ckpt is None or not ckpt.is_file():
        return "no checkpoint was written yet"
    return f"the last good checkpoint (epoch {load_checkpoint(ckpt)['epoch']}) is kept at {ckpt}"


@dataclasses.dataclass
class _Run:
    """A run's stateful parts: what each epoch's checkpoint saves, and what ``resume`` checks and restores."""

    ckpt: Path
    cfg: Config
    data: dict[str, int]
    model: VAE
    optimizer: torch.optim.Optimizer
    noise: torch.Generator
    shuffle: torch.Generator | None
    rank: int

    def save(self, epoch: int, history: list) -> None:
        noises = [self.noise.get_state()]
        if distributed():  # rank r's noise state is rng["noise"][r]
            mine = noises[0].to(self.model.device)  # NCCL gathers only device tensors
            noises = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
            dist.all_gather(noises, mine)
        if self.rank > 0:
            return
        rng = {"torch": torch.get_rng_state(), "noise": [t.cpu() for t in noises]}
        if self.shuffle is not None:
            rng["shuffle"] = self.shuffle.get_state()
        state = {"epoch": epoch, "config": dataclasses.asdict(self.cfg), "data": self.data, "history": history}
        state |= {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": rng}
        try:
            save_checkpoint(self.ckpt, state)
        except OSError as e:  # EFBIG, ENOSPC, EROFS: the previous checkpoint is still in place
            raise TrainingError(
                f"cannot write the checkpoint {self.ckpt} after epoch {epoch} ({e.strerror or e}); {_kept(self.ckpt)}"
            ) from e

    def restore(self) -> tuple[int, list]:
        """Everything the checkpoint holds, checked against this run before anything is loaded."""
        state = load_checkpoint(self.ckpt)
        new = {**{k: v for k, v in dataclasses.asdict(self.cfg).items() if k != "device"}, **self.data}
        old = {k: v for p in ("config", "data") if isinstance(state.get(p), dict) for k, v in state[p].items()}
        if changes := [f"{k}: {old.get(k)!r} in the checkpoint, {v!r} now" for k, v in new.items() if old.get(k) != v]:
            raise CheckpointError(
                f"cannot resume from {self.ckpt}: it was made by another run ({'; '.join(changes)}). Use the same "
                "settings, --limit, --test-limit and number of processes, or delete it to start afresh."
            )
        try:
            new = {k: v.shape for k, v in self.model.state_dict().items()}
            old = {k: getattr(v, "shape", None) for k, v in state["model"].items()}
            if wrong := sorted(k for k in new.keys() | old.keys() if new.get(k) != old.get(k)):
                raise ValueError(f"its weights do not fit this network (tensor {wrong[0]!r})")
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            moments = state["optimizer"]["state"]
            if sorted(moments) != list(range(len(params))) or any(
                moments[i][k].shape != p.shape for i, p in enumerate(params) for k in ("exp_avg", "exp_avg_sq")
            ):
                raise ValueError("its optimizer state does not fit the model")
            for theirs, fresh in zip(state["optimizer"]["param_groups"], self.optimizer.state_dict()["param_groups"]):
                if bad := [k for k, v in fresh.items() if k != "params" and type(theirs.get(k)) is not type(v)]:
                    raise ValueError(f"its optimizer settings hold an invalid {bad[0]!r}: {theirs.get(bad[0])!r}")
            tensors = [*state["model"].values(), *(t for m in moments.values() for t in m.values())]
            if not all(bool(t.isfinite().all()) for t in tensors):
                raise ValueError("it holds NaN or infinite values")
            self.model.load_state_dict(state["model"], strict=True)
            self.optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"]["torch"])
            self.noise.set_state(state["rng"]["noise"][self.rank])
            if self.shuffle is not None:
                self.shuffle.set_state(state["rng"]["shuffle"])
        except Exception as e:
            raise CheckpointError(f"cannot resume from {self.ckpt}: {first_line(e)}; delete it to start afresh") from e
        return state["epoch"], state["history"]


class Trainer:
    """Trains :class:`vae_hub.VAE` models described by one :class:`vae_hub.Config`."""

    def __init__(self, config: Config | None = None, *, compile: bool = False) -> None:
        self.config = config if config is not None else Config()
        self.compile = compile  # torch.compile each pass, its ELBO terms and its loss as one graph (vae_hub.fast)

    # The original API: one call per estimator, each training a fresh model.
    def train_with_sgvb(self, loader: Iterable, test_loader: Iterable | None = None, **kwargs: Any) -> FitResult:
        """Train with estimator A (the KL sampled at the reparameterized z)."""
        return self.fit("sgvb", loader, test_loader, **kwargs)

    def train_with_kl_wo_e(self, loader: Iterable, test_loader: Iterable | None = None, **kwargs: Any) -> FitResult:
        """Train with estimator B (the closed-form KL)."""
        return self.fit("kl_wo_e", loader, test_loader, **kwargs)

    def fit(
        self,
        regularizer: str,
        train_loader: Iterable,
        test_loader: Iterable | None = None,
        epochs: int | None = None,
        ckpt_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
    ) -> FitResult:
        """Train a fresh VAE for ``epochs`` (default ``config.epochs``) with ``regularizer``.

        ``train_loader`` is a re-iterable of ``(x, y)`` batches with a length, normally :class:`vae_hub.MNISTBatches`
        (its ``generator``, if it has one, is seeded and checkpointed). Raises :class:`TrainingError` on a
        non-finite loss or a failed checkpoint write, keeping the last good checkpoint.
        """
        epochs = self.config.epochs if epochs is None else epochs  # an explicit 0 is refused by Config, not ignored
        cfg = dataclasses.replace(self.config, regularizer=regularizer, epochs=epochs)
        device = resolve_device(cfg.device)
        if getattr(train_loader, "binarize", cfg.binarize) != cfg.binarize:
            raise TrainingError(f"the config says binarize={cfg.binarize} but the loader does not")
        steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
        if steps_per_epoch == 0:
            raise TrainingError("the training loader yields no batches")
        total_steps = cfg.epochs * steps_per_epoch
        rank, world = (dist.get_rank(), dist.get_world_size()) if distributed() else (0, 1)

        torch.manual_seed(cfg.seed)  # the initial weights
        model = VAE(cfg.architecture()).to(device).train()
        with torch.no_grad():
            if cfg.init_logvar is not None:  # the encoder's last layer outputs (μ, log σ²): its second half
                model.encoder[-1].bias[cfg.latent_dim :].fill_(cfg.init_logvar)
            if cfg.init_output_bias:  # logit of the mean training image: an untrained model draws the mean digit
                total = torch.zeros(cfg.input_dim + 1, dtype=torch.float64, device=device)  # pixel sums, images
                for x, _ in train_loader:
                    total += torch.cat([batch(x, model).sum(0, dtype=torch.float64), total.new_tensor([len(x)])])
                total = all_reduce_sum(total)  # every rank saw its own share
                model.decoder[-1].bias.copy_(torch.logit((total[:-1] / total[-1]).clamp(1e-3, 1 - 1e-3)))
        fused = device.type in ("cpu", "cuda")  # one kernel per step instead of one per tensor
        optimizer = torch.optim.Adam(model.parameters(), lr=lr_at(cfg, 0, total_steps, steps_per_epoch), fused=fused)
        noise = torch.Generator(device).manual_seed(cfg.seed + 1 + rank)  # each rank its own noise
        shuffle: torch.Generator | None = getattr(train_loader, "generator", None)
        if shuffle is not None:
            shuffle.manual_seed(cfg.seed)  # after the pass above, which must not count

        ckpt = Path(ckpt_dir) / CKPT_NAME if ckpt_dir is not None else None
        images = {"train_images": train_loader, "test_images": test_loader}  # a test_loader of None counts 0
        data = {k: len(getattr(v, "x", ())) for k, v in images.items()} | {"world_size": world}
        run = _Run(ckpt, cfg, data, model, optimizer, noise, shuffle, rank) if ckpt else None
        start, history = run.restore() if resume and run and ckpt.is_file() else (0, [])
        if world > 1 and all_reduce_sum(torch.tensor([start], device=device)).item() != start * world:
            raise CheckpointError(f"the ranks disagree about the checkpoint {ckpt}: put --ckpt-dir on a shared disk")
        ddp = {"device_ids": [device.index]} if device.type == "cuda" else {}  # one GPU per process
        net = torch.nn.parallel.DistributedDataParallel(model, **ddp) if world > 1 else model
        # compiled: one graph, the NLL fused; where no compiler works, the same pass on the same noise
        step_loss = fast.compiled(functools.partial(elbo_pass, nll=fast.nll_formula)) if self.compile else elbo_pass

        bar = tqdm(total=cfg.epochs, initial=start, desc=regularizer, unit="epoch", disable=not progress or rank > 0)
        step = start * steps_per_epoch
        for epoch in range(start + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            sums = torch.zeros(4, dtype=torch.float64, device=device)  # objective, rec, closed-form kl, images
            for x, _ in train_loader:
                lr, beta = lr_at(cfg, step, total_steps, steps_per_epoch), kl_weight_at(cfg, step, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = batch(x, model)
                eps = torch.randn(len(x), model.latent_dim, generator=noise, device=device)  # the model's own draw
                loss, batch_sums = step_loss(net, x, eps, torch.tensor(beta, device=device), regularizer)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if not math.isfinite(value := loss.item()):
                    raise TrainingError(
                        f"training stopped: the loss became {value} in epoch {epoch} (lr {lr:.3g}); {_kept(ckpt)}. "
                        "Try a lower learning rate, or check the data for NaN or inf."
                    )
                optimizer.step()
                step += 1
                sums[:3] += batch_sums
                sums[3] += len(x)
            objective, rec, kl_sum, n = all_reduce_sum(sums).tolist()
            record: dict[str, Any] = {"epoch": epoch, "lr": lr, "kl_weight": beta, "train_objective": objective / n}
            record |= {"train_nelbo": (rec + kl_sum) / n, "train_rec": rec / n, "train_kl": kl_sum / n}
            if test_loader is not None:
                record.update({f"test_{k}": v for k, v in nelbo_metrics(model, test_loader).items()})
                record["active_dims"] = active_dimensions(model, test_loader)["active_dims"]
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            shown = {s: f"{record[f'{s}_nelbo']:.2f}" for s in ("train", "test") if f"{s}_nelbo" in record}
            bar.set_postfix(shown, refresh=False)
            bar.update(1)
            if run is not None:
                run.save(epoch, history)
        bar.close()
        return FitResult(model.eval(), history)

"""The training loop, nanoGPT-style: plain PyTorch, no framework between the reader and the loop.

``Trainer(config).fit(regularizer, train_loader, test_loader)`` trains a fresh :class:`vae_hub.VAE` with one
of the two KL estimators and returns ``(model, history)``. Every epoch can end in an atomic checkpoint from
which ``resume=True`` continues bit-identically (see :mod:`training.checkpoint`).

Reproducibility: all randomness comes from three seeded sources, all checkpointed: torch's global RNG (the
initial weights), the loader's ``generator`` (the shuffling; the trainer seeds it from ``config.seed``) and
a dedicated generator for the reparameterization noise.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from vae_hub import VAE, Config
from vae_hub.objectives import elbo_terms, get_regularizer, kl_wo_e, training_objective

from . import distributed
from .checkpoint import (
    CKPT_NAME,
    CheckpointError,
    TrainingState,
    check_against,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from .metrics import active_dimensions, model_batch, nelbo_metrics
from .step import ManualStep, supports

# Fields whose change would make a resumed run differ from the run that wrote the checkpoint: all but the device.
RUN_FIELDS = tuple(f.name for f in dataclasses.fields(Config) if f.name != "device")

# The recipe of the bundled weights: the original architecture, batch size, optimizer (Adam) and objective, with a
# higher peak learning rate, a short warm-up and a cosine decay to zero, a careful initialisation, and a KL warm-up
# over the first 10 epochs (without it the 4-D family lets two latent dimensions collapse; see docs/training.md).
RECIPE: dict[str, Any] = {
    "lr": 3e-3,
    "lr_schedule": "cosine",
    "warmup_epochs": 1.0,
    "min_lr": 0.0,
    "init_output_bias": True,
    "init_logvar": -4.0,
    "kl_warmup_epochs": 10.0,
}


def recipe(**overrides: Any) -> Config:
    """The config ``make train`` trains with: ``Trainer(recipe()).train_with_sgvb(loader)`` reproduces the bundled
    2-D model, ``recipe(hidden_dims=[128, 32, 16, 8])`` the 4-D one."""
    return Config(**{**RECIPE, **overrides})


def data_identity(train_loader: Iterable, test_loader: Iterable | None, world_size: int = 1) -> dict[str, Any]:
    """What a resumed run must share with the one that wrote the checkpoint besides the settings: the numbers of
    training and test images (``--limit``, ``--test-limit``) and of processes (it decides the shards)."""

    def images(loader: Iterable | None) -> int | None:
        x = getattr(loader, "x", None)  # MNISTBatches holds every image (a rank's shard is chosen per epoch)
        return len(x) if x is not None else None

    return {"train_images": images(train_loader), "test_images": images(test_loader), "world_size": world_size}


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what was kept."""


class FitResult(NamedTuple):
    model: VAE
    history: list[dict[str, Any]]


def lr_at(config: Config, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    if config.lr_schedule == "constant":
        return config.lr
    warm = config.warmup_epochs * steps_per_epoch
    if step < warm:
        return config.lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1.0, total_steps - warm))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def init_output_bias(model: VAE, loader: Iterable) -> None:
    """Set the decoder's output bias to logit(mean training pixel), so an untrained model draws the mean digit."""
    total, n = None, 0
    for x, _ in loader:
        x = model_batch(x, model)
        total = x.sum(0) if total is None else total + x.sum(0)
        n += len(x)
    if distributed.active():  # every rank saw its own shard: the mean image is over all of them
        summed = distributed.all_reduce_sum(torch.cat([total.double(), total.new_tensor([n], dtype=torch.float64)]))
        total, n = summed[:-1].float(), int(summed[-1])
    mean = (total / n).clamp(1e-3, 1 - 1e-3)
    model.decoder[-1].bias.copy_(torch.logit(mean))


def kl_weight_at(config: Config, step: int, steps_per_epoch: int) -> float:
    """The KL term's weight β at optimizer step ``step``: linear from 0 to 1 over ``kl_warmup_epochs``, then 1."""
    warm = config.kl_warmup_epochs * steps_per_epoch
    return 1.0 if step >= warm else (step + 1) / warm


class Trainer:
    """Trains :class:`vae_hub.VAE` models described by one :class:`vae_hub.Config`.

    ``hand_derived=False`` computes the gradients with autograd in a single process too (as under DDP): the same
    numbers up to float rounding, about 10 % slower per step on a CPU (see training/step.py).
    """

    def __init__(self, config: Config | None = None, *, hand_derived: bool = True) -> None:
        self.config = config if config is not None else Config()
        self.hand_derived = hand_derived

    # The original API: one call per regularizer, each training a fresh model.
    def train_with_sgvb(self, loader: Iterable, test_loader: Iterable | None = None, **kwargs: Any) -> FitResult:
        """Train with estimator A (Monte Carlo KL at the reparameterized sample)."""
        return self.fit("sgvb", loader, test_loader, **kwargs)

    def train_with_kl_wo_e(self, loader: Iterable, test_loader: Iterable | None = None, **kwargs: Any) -> FitResult:
        """Train with estimator B (closed-form KL)."""
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

        ``train_loader`` is any re-iterable of ``(x, y)`` batches, normally :class:`vae_hub.MNISTBatches`; if it
        has a ``generator`` (its shuffling), the trainer seeds and checkpoints it. With ``ckpt_dir`` every epoch
        ends in an atomic checkpoint; ``resume=True`` continues from the last one. Raises :class:`TrainingError`
        on a non-finite loss or a failed checkpoint write, keeping the last good checkpoint.

        Inside a process group (``torchrun``, see :mod:`training.distributed`) the model is wrapped in
        ``DistributedDataParallel``, each rank trains on its loader's shard with its own noise, the metrics are
        summed over the ranks, and rank 0 alone writes the checkpoint (with every rank's noise state).
        """
        get_regularizer(regularizer)  # fail early, with the list of names
        cfg = dataclasses.replace(self.config, regularizer=regularizer, epochs=epochs or self.config.epochs)
        device = cfg.torch_device
        steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
        if steps_per_epoch == 0:
            raise TrainingError("the training loader yields no batches")
        total_steps = cfg.epochs * steps_per_epoch
        rank, world_size = (dist.get_rank(), dist.get_world_size()) if distributed.active() else (0, 1)
        progress = progress and rank == 0

        torch.manual_seed(cfg.seed)  # the initial weights
        model = VAE(cfg).to(device).train()
        if cfg.init_logvar is not None:
            with torch.no_grad():  # the encoder's last layer outputs (μ, log σ²): its second half is log σ²
                model.encoder[-1].bias[cfg.latent_dim :].fill_(cfg.init_logvar)
        if cfg.init_output_bias:
            init_output_bias(model, train_loader)  # before the shuffling is seeded: that pass must not count
        fused = device.type in ("cpu", "cuda")  # one kernel per step instead of one per tensor
        optimizer = torch.optim.Adam(model.parameters(), lr=lr_at(cfg, 0, total_steps, steps_per_epoch), fused=fused)
        noise = torch.Generator(device).manual_seed(cfg.seed + 1 + rank)  # each rank its own noise
        shuffle: torch.Generator | None = getattr(train_loader, "generator", None)
        if shuffle is not None:
            shuffle.manual_seed(cfg.seed)

        ckpt = Path(ckpt_dir) / CKPT_NAME if ckpt_dir is not None else None
        data = data_identity(train_loader, test_loader, world_size)
        history: list[dict[str, Any]] = []
        start = 0
        if ckpt is not None and rank == 0:
            remove_stale_temporaries(ckpt.parent)
        if resume and ckpt is not None and ckpt.is_file():
            start, history = self._restore(ckpt, cfg, data, model, optimizer, noise, shuffle)
        if world_size > 1:
            if int(distributed.all_reduce_sum(torch.tensor([start])).item()) != start * world_size:
                raise CheckpointError(
                    f"the ranks disagree about the checkpoint {ckpt}: put --ckpt-dir on a shared disk"
                )
            # DDP averages the gradients (and broadcasts rank 0's weights, equal anyway: same seed, same checkpoint)
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
            manual = None
        else:
            net = model
            # Gradients derived by hand: the same step without autograd's per-op cost (see training/step.py)
            manual = ManualStep(model, regularizer) if self.hand_derived and supports(model) else None

        overall = tqdm(total=cfg.epochs, initial=start, desc=f"{regularizer}", unit="epoch", disable=not progress)
        step = start * steps_per_epoch
        # oneDNN's GELU costs ~7 µs (forward) and ~15 µs (backward) per call even on a 256×4 tensor; PyTorch's
        # own kernel computes the same erf-based GELU (to 1 ulp) 2–4× faster on the narrow layers and as fast on
        # the wide ones, 4 % of a CPU epoch. The matmuls go to MKL either way. Restored when training ends.
        onednn = torch.backends.mkldnn.enabled
        if device.type == "cpu":
            torch.backends.mkldnn.enabled = False
        try:
            for epoch in range(start + 1, cfg.epochs + 1):
                t0 = time.perf_counter()
                sums = torch.zeros(3, dtype=torch.float64, device=device)  # objective, rec, closed-form kl
                n = 0
                bar = tqdm(
                    train_loader, total=steps_per_epoch, desc=f"epoch {epoch}", leave=False, disable=not progress
                )
                for i, (x, _) in enumerate(bar):
                    lr = lr_at(cfg, step, total_steps, steps_per_epoch)
                    beta = kl_weight_at(cfg, step, steps_per_epoch)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    x = model_batch(x, model)
                    if manual is not None:
                        out = manual(x, noise, beta)  # loss, and every .grad set
                        terms, loss = out.terms, out.loss
                    else:
                        out = net(x, generator=noise)
                        terms = elbo_terms(out.logits, x, out.mu, out.logvar, out.z, regularizer)
                        loss = training_objective(terms, beta)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                    value = loss.item()
                    if not math.isfinite(value):
                        raise TrainingError(self._diverged(value, epoch, i, lr, ckpt))
                    optimizer.step()
                    step += 1
                    with torch.no_grad():  # running sums in three small ops, read once per epoch
                        kl = terms.kl if regularizer == "kl_wo_e" else kl_wo_e(out.mu, out.logvar)
                        sums += torch.stack([terms.loss, terms.rec, kl]).sum(1, dtype=torch.float64)
                    n += len(x)
                    if i % 10 == 0:
                        bar.set_postfix(loss=f"{value:.2f}", refresh=False)
                bar.close()
                totals = torch.cat([sums, sums.new_tensor([n])])
                objective, rec, kl_sum, n = distributed.all_reduce_sum(totals).tolist()  # over all ranks
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "lr": lr,
                    "kl_weight": beta,
                    "train_objective": objective / n,  # the estimator that was optimised
                    "train_nelbo": (rec + kl_sum) / n,  # running average, closed-form KL
                    "train_rec": rec / n,
                    "train_kl": kl_sum / n,
                }
                if test_loader is not None:
                    record.update({f"test_{k}": v for k, v in nelbo_metrics(model, test_loader).items()})
                    record["active_dims"] = active_dimensions(model, test_loader)["active_dims"]
                record["seconds"] = time.perf_counter() - t0
                history.append(record)
                overall.set_postfix(
                    train=f"{record['train_nelbo']:.2f}",
                    test=f"{record.get('test_nelbo', float('nan')):.2f}",
                    refresh=False,
                )
                overall.update(1)
                if ckpt is not None:
                    state = self._state(epoch, cfg, data, history, model, optimizer, noise, shuffle)
                    if rank == 0:
                        self._save(ckpt, state)
        finally:
            torch.backends.mkldnn.enabled = onednn
            overall.close()
        return FitResult(model.eval(), history)

    @staticmethod
    def _diverged(value: float, epoch: int, step: int, lr: float, ckpt: Path | None) -> str:
        kept = (
            f"the last good checkpoint (epoch {load_checkpoint(ckpt).epoch}) is kept at {ckpt}"
            if ckpt is not None and ckpt.is_file()
            else "no checkpoint was written yet"
        )
        return (
            f"training stopped: the loss became {value} at epoch {epoch}, step {step} (lr {lr:.3g}); {kept}. "
            "Try a lower learning rate or check the input data for NaN/inf."
        )

    @staticmethod
    def _save(ckpt: Path, state: TrainingState) -> None:
        try:
            save_checkpoint(ckpt, state)
        except OSError as e:  # EFBIG, ENOSPC, EROFS...: the atomic writer left the previous checkpoint in place
            kept = (
                f"the last good checkpoint (epoch {load_checkpoint(ckpt).epoch}) is kept"
                if ckpt.is_file()
                else "no checkpoint was written yet"
            )
            raise TrainingError(
                f"cannot write the checkpoint {ckpt} after epoch {state.epoch} ({e.strerror or e}); {kept}"
            ) from e

    @staticmethod
    def _state(
        epoch: int,
        cfg: Config,
        data: dict[str, Any],
        history: list[dict[str, Any]],
        model: VAE,
        optimizer: torch.optim.Optimizer,
        noise: torch.Generator,
        shuffle: torch.Generator | None,
    ) -> TrainingState:
        # Rank r's noise generator is rng/noise (rank 0, the one-process layout) or rng/noise/<r>.
        noises = distributed.all_gather(noise.get_state())
        rng = {"torch": torch.get_rng_state(), "noise": noises[0]}
        rng.update({f"noise/{r}": state for r, state in enumerate(noises) if r > 0})
        if shuffle is not None:
            rng["shuffle"] = shuffle.get_state()
        extra = {"data": data}
        return TrainingState(epoch, cfg.to_dict(), history, model.state_dict(), optimizer.state_dict(), rng, extra)

    @staticmethod
    def _restore(
        ckpt: Path,
        cfg: Config,
        data: dict[str, Any],
        model: VAE,
        optimizer: torch.optim.Optimizer,
        noise: torch.Generator,
        shuffle: torch.Generator | None,
    ) -> tuple[int, list[dict[str, Any]]]:
        state = load_checkpoint(ckpt)
        mine = cfg.to_dict()
        diff = {k: (state.config.get(k), mine[k]) for k in RUN_FIELDS if state.config.get(k) != mine[k]}
        if diff:
            changes = ", ".join(f"{k}: {a!r} in the checkpoint, {b!r} now" for k, (a, b) in diff.items())
            raise CheckpointError(
                f"cannot resume from {ckpt}: the run's settings differ ({changes}). "
                "Use the same settings, or delete the checkpoint to start afresh."
            )
        theirs = state.extra.get("data")
        if theirs != data:
            if not isinstance(theirs, dict):
                theirs = {}
            changes = ", ".join(
                f"{k}: {theirs.get(k)!r} in the checkpoint, {v!r} now" for k, v in data.items() if theirs.get(k) != v
            )
            raise CheckpointError(
                f"cannot resume from {ckpt}: it was made with other data ({changes}). Use the same --limit, "
                "--test-limit and number of processes, or delete the checkpoint to start afresh."
            )
        if state.epoch > cfg.epochs:
            raise CheckpointError(f"{ckpt} is at epoch {state.epoch}, past the requested {cfg.epochs} epochs")
        check_against(ckpt, state, model, optimizer)
        rank = dist.get_rank() if distributed.active() else 0
        wanted = {"torch": torch.get_rng_state(), ("noise" if rank == 0 else f"noise/{rank}"): noise.get_state()}
        if shuffle is not None:
            wanted["shuffle"] = shuffle.get_state()
        for name, current in wanted.items():  # a wrong-sized state would crash inside set_state: refuse it here
            got = state.rng.get(name)
            if got is None or got.shape != current.shape:
                found = "missing" if got is None else f"{got.numel()} bytes, expected {current.numel()}"
                raise CheckpointError(
                    f"cannot resume from {ckpt}: RNG state rng/{name} is {found}; delete it to start afresh"
                )
        try:
            probe = torch.Generator(noise.device)
            probe.set_state(state.rng["noise" if rank == 0 else f"noise/{rank}"])
            torch.Generator().set_state(state.rng["torch"])
            if shuffle is not None:
                torch.Generator().set_state(state.rng["shuffle"])
        except RuntimeError as e:
            raise CheckpointError(
                f"cannot resume from {ckpt}: an RNG state is invalid ({e}); delete it to start afresh"
            ) from e
        model.load_state_dict(state.model, strict=True)
        optimizer.load_state_dict(state.optimizer)
        torch.set_rng_state(state.rng["torch"])
        noise.set_state(state.rng["noise" if rank == 0 else f"noise/{rank}"])
        if shuffle is not None:
            shuffle.set_state(state.rng["shuffle"])
        return state.epoch, state.history

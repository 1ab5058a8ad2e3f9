"""Evaluate a trained model: ``python -m training.evaluate weights/sgvb [--grad-variance] [--save]``.

Prints JSON with the test nELBO (one sample, closed-form KL for every model, so that variants compare), its
reconstruction and KL terms, an importance-weighted (IWAE) log-likelihood estimate with K samples, and the
figures it wrote. ``--grad-variance`` adds the variance of the encoder's gradient under each KL estimator,
on fixed batches. ``--save`` stores the result as ``eval.json`` in the model folder and re-renders its card.

Exit codes: 0 done, 2 bad input (no MNIST, unloadable weights, bad options).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.classifier import VERSION as CLASSIFIER_VERSION
from benchmarks.classifier import load_classifier, predict
from vae_hub import VAE, DataError, MNISTBatches, WeightsError, iwae_bound, load_mnist
from vae_hub.files import EVAL_NAME, METRICS_NAME, atomic_write_text
from vae_hub.objectives import REGULARIZERS, elbo_terms, reconstruction, score_function_surrogate

from .card import write_model_card
from .figures import write_figures
from .metrics import active_dimensions, nelbo_metrics

SCORE_FUNCTION = "score_function"  # the REINFORCE baseline: measured for contrast, never used for training


def encoder_parameters(model: VAE) -> list[torch.nn.Parameter]:
    """The parameters of q(z|x): the encoder MLP, whose last layer outputs (μ, log σ²)."""
    return [p for name, p in model.named_parameters() if name.startswith("encoder.")]


def _batch_terms(model: VAE, x: Tensor, estimator: str, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """The batch means of the reconstruction term and of the KL term under ``estimator``."""
    out = model(x, generator=gen)
    if estimator == SCORE_FUNCTION:
        return reconstruction(out.logits, x).mean(), score_function_surrogate(out.mu, out.logvar, out.z).mean()
    terms = elbo_terms(out.logits, x, out.mu, out.logvar, out.z, estimator)
    return terms.rec.mean(), terms.kl.mean()


def _flat_grad(loss: Tensor, params: list[torch.nn.Parameter], retain: bool = False) -> Tensor:
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, retain_graph=retain)])


def grad_variance(
    model: VAE,
    batches: list[Tensor],
    draws: int = 100,
    seed: int = 0,
    estimators: tuple[str, ...] = (*REGULARIZERS, SCORE_FUNCTION),
) -> dict[str, Any]:
    """Variance of the encoder's gradient of the batch-mean loss, per estimator, on fixed batches.

    For each batch the gradient is drawn ``draws`` times with fresh noise ε; every estimator sees the same ε
    (same seed per batch), so the comparison is paired. ``variance`` is the trace of the gradient's
    covariance (summed over parameters), averaged over batches; ``snr`` = ‖mean gradient‖² / variance;
    ``kl_variance`` is the same for the KL term's gradient alone (the part in which the estimators differ).
    """
    if draws < 2 or not batches:
        raise ValueError("grad_variance needs at least 2 draws and 1 batch")
    params = encoder_parameters(model)
    t0 = time.perf_counter()
    result: dict[str, dict[str, float]] = {}
    for estimator in estimators:
        sums = {"variance": 0.0, "mean_sq_norm": 0.0, "kl_variance": 0.0}
        for b, x in enumerate(batches):
            gen = torch.Generator(model.device).manual_seed(seed + b)
            total, kl_only = [], []
            for _ in range(draws):
                rec, kl = _batch_terms(model, x, estimator, gen)
                g_rec, g_kl = _flat_grad(rec, params, retain=True), _flat_grad(kl, params)
                total.append(g_rec + g_kl)
                kl_only.append(g_kl)
            g, g_kl = torch.stack(total).double(), torch.stack(kl_only).double()
            sums["variance"] += g.var(0).sum().item()
            sums["mean_sq_norm"] += g.mean(0).pow(2).sum().item()
            sums["kl_variance"] += g_kl.var(0).sum().item()
        stats = {k: v / len(batches) for k, v in sums.items()}
        stats["snr"] = stats["mean_sq_norm"] / stats["variance"]
        result[estimator] = stats
    return {
        "batches": len(batches),
        "batch_size": len(batches[0]),
        "draws": draws,
        "parameters": sum(p.numel() for p in params),
        "by_regularizer": result,
        "ratio_sgvb_over_kl_wo_e": result["sgvb"]["variance"] / result["kl_wo_e"]["variance"]
        if "sgvb" in result and "kl_wo_e" in result
        else None,
        "seconds": time.perf_counter() - t0,
    }


@torch.no_grad()
def classifier_accuracy(model: VAE, classifier: torch.nn.Module, loader: MNISTBatches) -> dict[str, Any]:
    """How often a digit classifier reads the clean test images, and the model's reconstructions (decoded μ) of
    them, as their true labels: what the reconstructions keep of each digit's identity."""
    rec = model.reconstruct(loader.x).reshape(len(loader.x), -1)
    return {
        "originals": (predict(classifier, loader.x.cpu()) == loader.y.cpu()).float().mean().item(),
        "reconstructions": (predict(classifier, rec.cpu()) == loader.y.cpu()).float().mean().item(),
        "classifier": CLASSIFIER_VERSION,
    }


@torch.no_grad()
def iwae_estimate(model: VAE, x: Tensor, k: int = 1000, chunk: int = 100, batch: int = 100, seed: int = 0) -> dict:
    """Mean IWAE bound log p(x) over ``x`` with K samples, ``batch`` images × ``chunk`` samples at a time.

    Uses :func:`vae_hub.iwae_bound`'s fast path (on the CPU, the whole 10,000-image test set at K=1000 takes
    tens of seconds rather than minutes); ``seconds``, ``cpu_seconds`` and ``threads`` say how long it took.
    """
    gen = torch.Generator(model.device).manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    values = torch.cat(
        [iwae_bound(model, x[i : i + batch], k=k, chunk=chunk, generator=gen).cpu() for i in range(0, len(x), batch)]
    )
    return {
        "k": k,
        "log_likelihood": values.mean().item(),
        "std_error": (values.std() / len(values) ** 0.5).item(),
        "images": len(values),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,  # all threads together; on a shared machine, steadier than wall time
        "threads": torch.get_num_threads(),
    }


def evaluate(
    model: VAE,
    images: Tensor,
    iwae_k: int = 1000,
    iwae_chunk: int = 100,
    iwae_batch: int = 100,
    grad_var: bool = False,
    gv_batches: int = 4,
    gv_draws: int = 100,
    seed: int = 0,
    labels: Tensor | None = None,
    classifier: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """All the numbers of the evaluation JSON, for ``images`` (uint8 (N, 28, 28) or float in [0, 1]).

    With ``labels`` it adds the active latent dimensions; with a ``classifier`` too (see
    :mod:`benchmarks.classifier`), how often it reads the originals and their reconstructions correctly.
    """
    device = model.device
    loader = MNISTBatches(images, labels, batch_size=1000, shuffle=False, device=device)
    result: dict[str, Any] = {"regularizer": model.config.regularizer, "test_images": len(loader.x)}
    result.update(nelbo_metrics(model, loader, seed=seed))
    result.update(active_dimensions(model, loader))
    if labels is not None and classifier is not None:
        result["classifier"] = classifier_accuracy(model, classifier, loader)
    result["kl_estimator"] = "closed-form (for every model, so that variants compare)"
    if iwae_k > 0:
        result["iwae"] = iwae_estimate(model, loader.x, iwae_k, iwae_chunk, iwae_batch, seed)
    if grad_var:
        fixed = [loader.x[i * 256 : (i + 1) * 256] for i in range(gv_batches) if (i + 1) * 256 <= len(loader.x)]
        if not fixed:
            fixed = [loader.x]
        result["grad_variance"] = grad_variance(model, fixed, gv_draws, seed)
        # For contrast: the same measurement at a fresh model (PyTorch's default initialisation, σ ≈ 1), where
        # the posterior is wide and the Monte Carlo KL's noise is no longer negligible.
        torch.manual_seed(seed)
        fresh = VAE(model.config).to(device)
        result["grad_variance_at_init"] = grad_variance(fresh, fixed, gv_draws, seed)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="a save_pretrained folder (e.g. weights/sgvb) or a Hub repo id")
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $VAE_HUB_DATA, else ./data)")
    p.add_argument("--iwae-k", type=int, default=1000, help="importance samples per image (0 to skip)")
    p.add_argument("--iwae-chunk", type=int, default=100, help="samples drawn at a time (bounds memory)")
    p.add_argument("--iwae-batch", type=int, default=100, help="images evaluated at a time (bounds memory)")
    p.add_argument("--grad-variance", action="store_true", help="measure the encoder's gradient variance")
    p.add_argument("--gv-batches", type=int, default=4, help="fixed batches of 256 test images")
    p.add_argument("--gv-draws", type=int, default=100, help="gradient draws per batch")
    p.add_argument("--limit", type=int, help="evaluate on the first N test images only")
    p.add_argument("--figures-dir", type=Path, help="where to write the figures (default: the model folder)")
    p.add_argument("--no-figures", action="store_true", help="write no figures")
    p.add_argument(
        "--classifier",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure how often a digit classifier reads the reconstructions (trains one the first time, ~1 min)",
    )
    p.add_argument("--save", action="store_true", help=f"write {EVAL_NAME} into the model folder, update its card")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling noise")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.iwae_k < 0 or args.iwae_chunk <= 0 or args.iwae_batch <= 0 or args.gv_batches <= 0 or args.gv_draws < 2:
        print("error: --iwae-k must be ≥ 0, --gv-draws ≥ 2, and the other sizes positive", file=sys.stderr)
        return 2
    local = Path(args.model).is_dir()
    if args.save and not local:
        print("error: --save needs a local model folder", file=sys.stderr)
        return 2
    try:
        model = VAE.from_pretrained(args.model, map_location=args.device)
        images, labels = load_mnist("test", args.data_dir, download=False)
        classifier = load_classifier(args.data_dir) if args.classifier else None
    except (WeightsError, DataError, OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    t0 = time.perf_counter()
    result = {"model": args.model}
    result.update(
        evaluate(
            model,
            images,
            args.iwae_k,
            args.iwae_chunk,
            args.iwae_batch,
            args.grad_variance,
            args.gv_batches,
            args.gv_draws,
            args.seed,
            labels,
            classifier,
        )
    )
    result["seconds"] = time.perf_counter() - t0
    if not args.no_figures:
        folder = args.figures_dir or (Path(args.model) if local else Path("runs/eval") / args.model.replace("/", "--"))
        metrics_file = Path(args.model) / METRICS_NAME
        history = json.loads(metrics_file.read_text())["history"] if local and metrics_file.is_file() else None
        result["figures"] = [str(p) for p in write_figures(model, images, folder, history, labels)]
    if args.save:
        atomic_write_text(Path(args.model) / EVAL_NAME, json.dumps(result, indent=1) + "\n")
        result["card"] = str(write_model_card(Path(args.model)))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

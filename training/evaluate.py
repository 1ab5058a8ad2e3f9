"""Evaluate a trained model: ``python -m training.evaluate weights/sgvb [--grad-variance] [--save]``.

Prints JSON with the test nELBO (one sample, closed-form KL for every model, so that the estimators compare), its
reconstruction and KL terms, the active latent dimensions, and an importance-weighted (IWAE) log-likelihood
estimate with K samples and its standard error. ``--protocol binarized`` is the literature's binarized MNIST.

Exit codes: 0 done, 1 --save could not write eval.json, 2 bad input (no MNIST, unloadable weights, bad options).
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

from training.cli import Parser, at_least, fail, read_json, write_json


def grad_variance(model: Any, batches: list, draws: int = 100, seed: int = 0) -> dict[str, Any]:
    """Variance of the encoder's gradient of the batch-mean loss, per estimator, on fixed batches.

    Each batch's gradient is drawn ``draws`` times with fresh noise ε, the same ε for every estimator (paired).
    ``variance`` is the trace of the gradient's covariance averaged over batches, ``kl_variance`` the same for the
    KL term's gradient alone (where the estimators differ), ``snr`` = ‖mean gradient‖² / variance.
    """
    import torch

    from vae_hub.objectives import REGULARIZERS, bernoulli_nll, score_function_surrogate

    kl_terms = {**REGULARIZERS, "score_function": score_function_surrogate}  # REINFORCE: for contrast only
    params = [p for name, p in model.named_parameters() if name.startswith("encoder.")]
    result = {}
    for estimator, kl_term in kl_terms.items():
        sums = torch.zeros(3, dtype=torch.float64)
        for b, x in enumerate(batches):
            gen = torch.Generator(model.device).manual_seed(seed + b)
            total, kl_only = [], []
            for _ in range(draws):
                out = model(x, generator=gen)
                rec, kl = bernoulli_nll(out.logits, x).mean(), kl_term(out.mu, out.logvar, out.z).mean()
                g_rec = torch.autograd.grad(rec, params, retain_graph=True)
                g_kl = torch.autograd.grad(kl, params)
                kl_only.append(torch.cat([g.flatten() for g in g_kl]).double())
                total.append(torch.cat([(a + b).flatten() for a, b in zip(g_rec, g_kl)]).double())
            g, g_kl = torch.stack(total), torch.stack(kl_only)
            sums += torch.stack([g.var(0).sum(), g.mean(0).pow(2).sum(), g_kl.var(0).sum()])
        stats = dict(zip(("variance", "mean_sq_norm", "kl_variance"), (sums / len(batches)).tolist()))
        result[estimator] = {**stats, "snr": stats["mean_sq_norm"] / stats["variance"]}
    return {"batches": len(batches), "batch_size": len(batches[0]), "draws": draws, "by_regularizer": result}


def iwae_estimate(model: Any, x: Any, k: int, seed: int = 0, compile: bool = False, progress: bool = False) -> dict:
    """The mean IWAE bound over ``x`` with K samples, 100 images at a time, and its standard error."""
    import torch
    from tqdm.auto import tqdm

    from vae_hub import fast, objectives

    bound = fast.iwae_bound if compile else objectives.iwae_bound
    gen = torch.Generator(model.device).manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    quiet = None if progress else True  # None: a bar on a terminal only
    starts = tqdm(range(0, len(x), 100), desc=f"IWAE, K = {k}", unit="batch", disable=quiet, leave=False)
    values = torch.cat([bound(model, x[i : i + 100], k=k, generator=gen).cpu() for i in starts])
    return {
        "k": k,
        "log_likelihood": values.mean().item(),
        "std_error": (values.std() / len(values) ** 0.5).item(),
        "images": len(values),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,  # all threads together: steadier than wall time on a busy machine
        "threads": torch.get_num_threads(),
        "compiled": compile,
    }


def build_parser() -> Parser:
    p = Parser("python -m training.evaluate", __doc__.split("\n\n")[0])
    p.add_argument("model", help="a save_pretrained folder (e.g. weights/sgvb) or a Hub repo id")
    p.add_argument("--data-dir", help="folder holding MNIST/raw (default: $VAE_HUB_DATA, else ./data)")
    p.add_argument(
        "--protocol",
        choices=["grey", "binarized"],
        help="test images as grey levels, or binarized once with seed 0 (default: as the model was trained)",
    )
    p.add_argument("--iwae-k", type=at_least(0), default=1000, help="importance samples per image (0: skip)")
    p.add_argument("--compile", action="store_true", help="torch.compile the IWAE bound (several times faster)")
    p.add_argument("--grad-variance", action="store_true", help="measure the encoder's gradient variance")
    p.add_argument("--gv-batches", type=at_least(1), default=4, help="fixed batches of 256 test images")
    p.add_argument("--gv-draws", type=at_least(2), default=100, help="gradient draws per batch")
    p.add_argument("--limit", type=at_least(1), help="evaluate on the first N test images only")
    p.add_argument("--save", action="store_true", help="write eval.json into the model folder, then figures and card")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed of the sampling noise")
    p.add_argument("--threads", type=at_least(1), default=1, help="CPU threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder = Path(args.model)
    if args.save and not folder.is_dir():
        return fail("--save needs a local model folder")
    import torch

    from training.trainer import TrainingError, active_dimensions, nelbo_metrics, resolve_device
    from vae_hub import VAE, DataError, MNISTBatches, WeightsError, load_mnist
    from vae_hub.data import binarize

    torch.set_num_threads(args.threads)
    try:
        model = VAE.from_pretrained(args.model, map_location=resolve_device(args.device))
        images, labels = (t[: args.limit] for t in load_mnist("test", args.data_dir, download=False))
        trained = read_json(folder / "training_args.json")
    except (WeightsError, DataError, TrainingError, ValueError, OSError) as e:
        return fail(str(e))
    protocol = args.protocol or ("binarized" if trained.get("binarize") else "grey")
    images = binarize(images) if protocol == "binarized" else images
    t0 = time.perf_counter()
    loader = MNISTBatches(model.pixels(images), labels, 1000, shuffle=False, device=model.device)
    result: dict[str, Any] = {
        "model": args.model,
        "protocol": protocol,
        "test_images": len(images),
        **nelbo_metrics(model, loader, args.seed),
        **active_dimensions(model, loader),
    }
    if args.iwae_k > 0:
        result["iwae"] = iwae_estimate(model, loader.x, args.iwae_k, args.seed, args.compile, not args.no_progress)
    if args.grad_variance:
        fixed = [b for b in loader.x[: args.gv_batches * 256].split(256) if len(b) == 256] or [loader.x]
        result["grad_variance"] = grad_variance(model, fixed, args.gv_draws, args.seed)
        torch.manual_seed(args.seed)  # for contrast: a fresh model (σ ≈ 1), where the sampled KL is far noisier
        fresh = VAE(model.config).to(model.device)
        result["grad_variance_at_init"] = grad_variance(fresh, fixed, args.gv_draws, args.seed)
    result["seconds"] = time.perf_counter() - t0
    print(json.dumps(result, indent=1))
    if args.save:  # what was computed is kept before anything optional can fail
        try:
            write_json(folder / "eval.json", result)
        except OSError as e:
            return fail(f"cannot write {folder / 'eval.json'} ({e.strerror or e}); the numbers are printed above", 1)
        from training.card import write_card, write_figures

        try:
            write_figures(model, images, labels, folder, read_json(folder / "metrics.json").get("history"))
            write_card(folder)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            print(f"warning: eval.json is saved; the figures or the card could not be written ({e})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

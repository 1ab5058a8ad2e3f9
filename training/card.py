"""The model card: README.md for a ``save_pretrained`` folder, rendered from what the folder holds.

Reads ``config.json``, and if present ``metrics.json`` (written by :mod:`training.train`), ``eval.json``
(written by ``python -m training.evaluate --save``) and the figures. Writes YAML metadata for the Hub
(library, tags, license, dataset, model-index) followed by the description, metrics and usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from vae_hub import VAE, Config
from vae_hub.files import EVAL_NAME, FIGURES, METRICS_NAME, TRAINING_ARGS_NAME, atomic_write_text
from vae_hub.hub import CARD_METADATA

REGULARIZER_TEXT = {
    "sgvb": (
        "**SGVB** (estimator A): the KL term is estimated by Monte Carlo, as log q(z|x) − log p(z) at the same "
        "reparameterized sample z = μ + σ·ε that the reconstruction uses (Kingma & Welling 2014, eq. 6). It is "
        "unbiased but noisy."
    ),
    "kl_wo_e": (
        '**KL-WO-E** ("KL without expectation", estimator B): the KL term is the closed form '
        "½ Σ (μ² + σ² − log σ² − 1), with no sampling (Kingma & Welling 2014, eq. 10). Only the reconstruction "
        "term is sampled."
    ),
}


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "—"


def _mnist_test_result(metric_type: str, metric_name: str, value: float) -> EvalResult:
    return EvalResult(
        task_type="image-generation",
        dataset_type="mnist",
        dataset_name="MNIST",
        dataset_split="test",
        metric_type=metric_type,
        metric_name=metric_name,
        metric_value=round(float(value), 3),
    )


def _card_data(variant: str, test: dict[str, Any], iwae: dict[str, Any] | None) -> ModelCardData:
    results = []
    if "nelbo" in test:
        results.append(_mnist_test_result("nelbo", "negative ELBO (nats/image, closed-form KL)", test["nelbo"]))
    if iwae and "log_likelihood" in iwae:
        name = f"IWAE log-likelihood estimate, K={iwae.get('k')} (nats/image)"
        results.append(_mnist_test_result("log_likelihood", name, iwae["log_likelihood"]))
    metadata = {**CARD_METADATA, "tags": [*CARD_METADATA["tags"], variant]}
    return ModelCardData(**metadata, model_name=f"vae-mnist-{variant}", eval_results=results or None)


def _test_numbers(metrics: dict[str, Any] | None, evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """The final test numbers: from eval.json if present (it is the more careful run), else the last epoch."""
    if evaluation and "nelbo" in evaluation:
        return {k: evaluation[k] for k in ("nelbo", "rec", "kl") if k in evaluation}
    if metrics and metrics.get("history"):
        last = metrics["history"][-1]
        return {k: last[f"test_{k}"] for k in ("nelbo", "rec", "kl") if f"test_{k}" in last}
    return {}


def _gv_rows(gv: dict[str, Any]) -> str:
    return "\n".join(
        f"| {name} | {v.get('variance', 0):.4g} | {v.get('kl_variance', 0):.3g} | {v.get('mean_sq_norm', 0):.4g} "
        f"| {v.get('snr', 0):.3g} |"
        for name, v in gv.get("by_regularizer", {}).items()
    )


def _grad_variance_section(gv: dict[str, Any], at_init: dict[str, Any] | None) -> str:
    header = "| estimator | gradient variance | KL part | ‖mean gradient‖² | SNR |\n|---|---|---|---|---|"
    init = (
        f"""
The same measurement at a freshly initialised model (PyTorch's default initialisation, posterior σ ≈ 1), where
the Monte Carlo KL is far noisier:

{header}
{_gv_rows(at_init)}
"""
        if at_init
        else ""
    )
    return f"""
### Gradient variance of the encoder

On {gv.get("batches")} fixed test batches of {gv.get("batch_size")} images, the gradient of the batch-mean
loss with respect to the encoder's parameters was drawn {gv.get("draws")} times per batch (fresh noise ε each
time, the same ε for every estimator) at these weights. *Variance* is the trace of the gradient's covariance
(summed over parameters, averaged over batches); *KL part* is the same for the KL term's gradient alone, the
part in which the estimators differ; *SNR* is ‖mean gradient‖² / variance. SGVB and the closed form have the
same expected gradient; the closed form removes the KL term's sampling noise entirely (its KL part is 0), while
the reconstruction term's noise is common to both. The score-function (REINFORCE) estimator of the same KL
gradient is shown for contrast; it is not used for training.

At these (trained) weights:

{header}
{_gv_rows(gv)}
{init}"""


def write_model_card(folder: Path, repo_id: str | None = None) -> Path:
    """Render ``folder/README.md`` from the folder's config, metrics, evaluation and figures; return its path."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    if config is None:
        raise FileNotFoundError(f"{folder} has no config.json; save the model with save_pretrained first")
    metrics = _read_json(folder / METRICS_NAME)
    evaluation = _read_json(folder / EVAL_NAME)
    args = _read_json(folder / TRAINING_ARGS_NAME) or {}
    variant = config.get("regularizer", folder.name)
    hidden = config.get("hidden_dims", [])
    latent = hidden[-1] // 2 if hidden else 0
    # Other latent sizes in their own folders, as under weights/ (z4/...), so that reproducing one never
    # overwrites another model or resumes its checkpoint.
    family = "" if latent == Config().latent_dim else f"/z{latent}"
    with torch.device("meta"):  # the network itself counts its parameters; meta: no memory for the weights
        n_params = sum(p.numel() for p in VAE(Config.from_dict(config)).parameters())
    repo = repo_id or f"USER/vae-mnist-{variant.replace('_', '-')}"
    test = _test_numbers(metrics, evaluation)
    iwae = (evaluation or {}).get("iwae")
    history = (metrics or {}).get("history", [])

    table = [
        "| metric (MNIST test set, 10k images, nats/image) | value |",
        "|---|---|",
        f"| negative ELBO, single sample, closed-form KL | {_fmt(test.get('nelbo'))} |",
        f"| reconstruction term −E_q log p(x\\|z) | {_fmt(test.get('rec'))} |",
        f"| KL(q(z\\|x) ‖ p(z)) | {_fmt(test.get('kl'))} |",
    ]
    if iwae:
        table.append(
            f"| IWAE log-likelihood estimate log p(x), K={iwae.get('k')} | {_fmt(iwae.get('log_likelihood'))} |"
        )
    if (metrics or {}).get("active_dims") is not None:
        table.append(
            f"| active latent dimensions (Var[μ] > {metrics.get('threshold', 0.01)}) "
            f"| {metrics['active_dims']} of {latent} |"
        )
    clf = (evaluation or {}).get("classifier")
    if clf:
        table.append(
            f"| test digits a classifier reads correctly: originals / reconstructions | "
            f"{clf['originals']:.2%} / {clf['reconstructions']:.2%} |"
        )
    if history:
        table.append(
            f"| final training nELBO (running mean over the last epoch) | {_fmt(history[-1]['train_nelbo'])} |"
        )
    figures = "\n".join(
        f"![{name}]({file})" for name, file in FIGURES.items() if (folder / file).is_file() and name != "curves"
    )
    curves = f"\n![training curves]({FIGURES['curves']})\n" if (folder / FIGURES["curves"]).is_file() else ""
    gv = (evaluation or {}).get("grad_variance")
    schedule = (
        f"cosine decay from {args.get('lr')} to {args.get('min_lr')} after "
        f"{args.get('warmup_epochs')} epoch(s) of linear warm-up"
        if args.get("lr_schedule") == "cosine"
        else f"constant {args.get('lr')}"
    )
    if args.get("init_output_bias"):
        schedule += "; the decoder's output bias started at the logit of the mean training image"
    if args.get("init_logvar") is not None:
        schedule += f"; the encoder's log σ² bias started at {args['init_logvar']} (a small initial variance)"
    if args.get("kl_warmup_epochs"):
        schedule += (
            f"; the KL term's weight rose linearly from 0 to 1 over the first {args['kl_warmup_epochs']:g} epochs"
        )
    n_train = (metrics or {}).get("train_images")
    on_images = (
        "all 60,000 MNIST training images"
        if n_train in (None, 60000)
        else f"only the first {n_train:,} MNIST training images"
    )
    seconds = (metrics or {}).get("train_seconds")
    timing = f" Training took {seconds:.0f} s on {metrics.get('device', '?')}." if seconds else ""

    body = f"""
# VAE on MNIST — `{variant}` regularizer

A small variational autoencoder (Kingma & Welling, *Auto-Encoding Variational Bayes*, 2014) trained on
{on_images} with the **{variant}** estimator of the KL term, built with
[vae-hub](https://github.com/vae-hub/vae-hub) (PyTorch, safetensors, `PyTorchModelHubMixin`).

- Encoder q(z|x): MLP {"→".join(str(d) for d in [config.get("input_dim"), *hidden])} ({config.get("act_fun")}), the
  last layer linear and split into μ and log σ² ∈ R^{latent}: a diagonal Gaussian over a **{latent}-D latent**.
- Decoder p(x|z): MLP {"→".join(str(d) for d in [latent, *reversed(hidden), config.get("input_dim")])} to Bernoulli
  logits. Prior p(z) = N(0, I). {n_params:,} parameters.
- Objective: the negative ELBO = reconstruction + KL, with one reparameterized sample z = μ + σ·ε per image.

## The two regularizers

Both variants optimise the same objective and differ only in how the KL(q(z|x) ‖ p(z)) term is estimated:

- {REGULARIZER_TEXT["sgvb"]}
- {REGULARIZER_TEXT["kl_wo_e"]}

Both give *pathwise* (reparameterization) gradients: SGVB is not a score-function (REINFORCE) estimator.
This model was trained with **{variant}**. All numbers below use the closed-form KL for evaluation, so
the two variants compare directly.

## Metrics

{chr(10).join(table)}
{_grad_variance_section(gv, (evaluation or {}).get("grad_variance_at_init")) if gv else ""}
## Samples and reconstructions

{figures}
{curves}
## Usage

```python
import torch
from vae_hub import VAE

model = VAE.from_pretrained("{repo}")   # safetensors only, never pickle
images = model.sample(16, generator=torch.Generator().manual_seed(0))  # (16, 1, 28, 28) in [0, 1]
mu, logvar = model.encode(torch.rand(1, 784))                           # the posterior q(z|x)
reconstruction = model.reconstruct(torch.rand(1, 1, 28, 28))
```

## Training

{args.get("epochs")} epochs, batch size {args.get("batch_size")}, Adam, learning rate {schedule},
seed {args.get("seed")}, on {on_images}.{timing} Reproduce with
`python -m training.train --regularizer {variant} --hidden-dims {" ".join(map(str, hidden))} \
--epochs {args.get("epochs")} --seed {args.get("seed")} --out runs/reproduce{family} \
--ckpt-dir runs/checkpoints{family}` (it writes `runs/reproduce{family}/{variant}`), or from Python with
`Trainer(recipe(hidden_dims={hidden})).train_with_{variant}(loader)` (`from training import Trainer, recipe`).
The architecture is in `config.json`, the training settings in `training_args.json`, per-epoch metrics
in `metrics.json`.

## License

The weights are released under CC BY-SA 3.0, the license of the data they were trained on: the MNIST database
by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, available under the terms of the
[Creative Commons Attribution-Share Alike 3.0](https://creativecommons.org/licenses/by-sa/3.0/) license.
"""
    card = ModelCard(f"---\n{_card_data(variant, test, iwae).to_yaml()}\n---\n{body}")
    return atomic_write_text(folder / "README.md", str(card))

"""What goes beside a trained model's weights: its figures, and its card rendered from what the folder holds."""

import io
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from matplotlib.figure import Figure
from PIL import Image

from training import RECIPE
from training.cli import FIGURES, read_json
from vae_hub import VAE, Config, VAEConfig
from vae_hub.hub import CARD_METADATA, CARD_TEMPLATE, PAPER_URL, REPO_URL
from vae_hub.viz import evaluate_model, plot_latent_images, plot_latent_scatter, plot_samples


def save_png(fig: Figure, path: Path, gray: bool = True) -> None:
    """A small PNG (grayscale, or a 64-colour palette), so that model folders stay light."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    image = Image.open(buf)
    (image.convert("L") if gray else image.convert("RGB").quantize(colors=64)).save(path, optimize=True)


def plot_curves(history: list[dict[str, Any]], title: str = "") -> Figure:
    """Per-epoch nELBO, reconstruction and KL (closed form), train (running mean) and test."""
    fig = Figure(figsize=(11, 3.2))
    epochs = [h["epoch"] for h in history]
    for ax, key, label in zip(fig.subplots(1, 3), ("nelbo", "rec", "kl"), ("nELBO", "reconstruction", "KL")):
        for split in ("train", "test"):
            if f"{split}_{key}" in history[0]:
                ax.plot(epochs, [h[f"{split}_{key}"] for h in history], label=split)
        ax.set(xlabel="epoch", ylabel="nats / image", title=label)
        ax.grid(alpha=0.3)
        if key == "nelbo" and len(history) > 5:  # the first epochs dwarf the rest
            tail = [h.get(f"{s}_nelbo", h["train_nelbo"]) for h in history[2:] for s in ("train", "test")]
            ax.set_ylim(min(tail) - 2, max(tail) + 2)
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_figures(model: VAE, images: torch.Tensor, labels: torch.Tensor, folder: Path, history: list | None) -> None:
    """Samples, reconstructions, the decoded latent space, the test digits' posterior means and the curves."""
    figures = {
        "samples": plot_samples(model, n=64, seed=0),
        "reconstructions": evaluate_model(model, images, n=12),
        "latent": plot_latent_images(model, n=20),
        "latent_means": plot_latent_scatter(model.encode(images)[0].cpu(), labels, note=f"{len(labels):,} test digits"),
    }
    if history:
        figures["curves"] = plot_curves(history)
    for name, fig in figures.items():
        save_png(fig, folder / f"{name}.png", gray=name in ("samples", "reconstructions", "latent"))


def reproduce_command(args: dict[str, Any], arch: VAEConfig) -> str:
    """The command line that trains this model again, into runs/reproduce (never over the bundled weights)."""
    family = ("/binarized" if args.get("binarize") else "") + ("" if arch.latent_dim == 2 else f"/z{arch.latent_dim}")
    defaults = {**vars(Config()), **RECIPE, "device": "auto"}
    flags = [f"--regularizer {args['regularizer']}", f"--hidden-dims {' '.join(map(str, arch.hidden_dims))}"]
    for name, value in args.items():
        if name not in ("regularizer", "device") and (value != defaults.get(name) or name in ("epochs", "seed")):
            flag = "--" + name.replace("_", "-")
            flags.append((flag if value else "--no-" + flag[2:]) if isinstance(value, bool) else f"{flag} {value}")
    folders = f"--out runs/reproduce{family} --ckpt-dir runs/checkpoints{family}"
    return f"python -m training.train {' '.join(flags)} {folders}"


def write_card(folder: Path, repo_id: str | None = None) -> None:
    """Render ``folder/README.md``: :data:`vae_hub.hub.CARD_TEMPLATE`, filled in from what the folder holds."""
    arch = VAEConfig.from_dict(read_json(folder / "config.json"))
    args, metrics, evaluation = (read_json(folder / f) for f in ("training_args.json", "metrics.json", "eval.json"))
    variant = args.get("regularizer", folder.name)
    with torch.device("meta"):
        parameters = sum(p.numel() for p in VAE(arch).parameters())
    test = evaluation or {k.removeprefix("test_"): v for k, v in (metrics.get("history") or [{}])[-1].items()}
    rows = [
        (f"negative ELBO{'' if evaluation else ' (last epoch)'}", test.get("nelbo")),
        ("reconstruction −E_q log p(x\\|z)", test.get("rec")),
        ("KL(q(z\\|x) ‖ p(z))", test.get("kl")),
    ]
    iwae = evaluation.get("iwae")
    scores = {"nelbo": ("negative ELBO (nats/image)", test.get("nelbo"))}
    if iwae:
        estimate = f"{iwae['log_likelihood']:.2f} ± {iwae['std_error']:.2f}"
        rows.append((f"IWAE log-likelihood, K = {iwae['k']:,}", estimate))
        scores["log_likelihood"] = (f"IWAE log-likelihood, K={iwae['k']}", iwae["log_likelihood"])
    if "active_dims" in metrics:
        rows.append(("active latent dimensions (Var μ > 0.01)", f"{metrics['active_dims']} of {arch.latent_dim}"))
    binarized = evaluation.get("protocol", "binarized" if args.get("binarize") else "grey") == "binarized"
    mnist = {"task_type": "image-generation", "dataset_type": "mnist", "dataset_name": "MNIST", "dataset_split": "test"}
    results = [
        EvalResult(**mnist, metric_type=kind, metric_name=name, metric_value=round(float(value), 3))
        for kind, (name, value) in scores.items()
        if isinstance(value, (int, float))
    ]
    meta = {k: v for k, v in CARD_METADATA.items() if k not in ("repo_url", "paper_url", "model_card_template")}
    meta.update(tags=[*meta["tags"], variant], datasets=["mnist"], model_name=f"vae-mnist-{variant}")
    targets = ", dynamically binarized" if args.get("binarize") else " (grey levels as Bernoulli targets)"
    literature = None  # this model's row beside the published ones, with their minus sign
    if binarized and arch.latent_dim == 2 and iwae:
        literature = [f"{v:.2f}".replace("-", "−") for v in (iwae["log_likelihood"], -test["nelbo"])]
    ModelCard.from_template(
        ModelCardData(**meta, eval_results=results or None),
        template_str=CARD_TEMPLATE,
        repo_url=REPO_URL,
        paper_url=PAPER_URL,
        repo_id=repo_id,
        variant=variant,
        arch=arch,
        parameters=parameters,
        data=f"{metrics.get('train_images', 60000):,} MNIST training images{targets}",
        binarized=binarized,
        literature=literature,
        scores=[(name, f"{v:.2f}" if isinstance(v, float) else v) for name, v in rows if v is not None] or None,
        n_test=evaluation.get("test_images", metrics.get("test_images", 10000)),
        evaluation=evaluation,
        figures=[name for name in FIGURES if (folder / f"{name}.png").is_file()],
        args=args,
        metrics=metrics,
        reproduce=reproduce_command(args, arch) if args else None,
    ).save(folder / "README.md")

"""Robustness of preprocessing: MNIST test digits given the way people give them, read back by a classifier.

    python benchmarks/bench_robustness.py [--n 500] [--kinds blur,lowres] [--weights weights] [--seed 0]

For each kind of input made from a fixed, seeded subset of MNIST's *test* digits (blurred photos, low-resolution
scans, thick marker, thin pen, uneven paper as JPEG, sketchpad strokes, a photo on the editor's transparent
canvas, rotations, off-centre and tight crops) it prints how often a small classifier trained on MNIST's
*training* set (``training.classifier``, cached under ``runs/classifier/``, never shipped) reads correctly
  - "drawn": the digit as the pen, lens or scanner made it, shrunk to 28×28 in MNIST's framing, before paper,
    lighting, canvas or file format: the ceiling for preprocessing (a marker that closes a loop lowers it);
  - "input": the 28×28 digit ``vae_hub.preprocess.to_mnist`` makes of the input, read as the app reads it
    (``webapp.handlers.digit``: an editor's value is first made one image), and
  - each bundled model's reconstruction of it (every folder under ``--weights`` holding ``model.safetensors``),
and the mean pixel value of the preprocessed digits against that of the same MNIST digits. Targets (issue 11):
input accuracy ≥ 97.5% on every sharp kind and ≥ 93% on the blurred and low-resolution ones; mean pixel value
within 15% of MNIST's on every kind. Inputs that ``to_mnist`` refuses count as misread (column "err").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from training.classifier import load_classifier, predict  # noqa: E402
from training.degrade import KINDS, Kind  # noqa: E402
from vae_hub import VAE, DataError, WeightsError, load_mnist  # noqa: E402
from vae_hub.preprocess import InputError  # noqa: E402
from webapp.handlers import digit  # noqa: E402

SOFT = ("blur", "lowres")  # the kinds whose target is 93% (the others are sharp: 97.5%)
SHARP_TARGET, SOFT_TARGET, MEAN_TOLERANCE = 0.975, 0.93, 0.15


# --- measuring -----------------------------------------------------------------------------------------------


def make_all(kind: Kind, digits: np.ndarray, seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Each digit as drawn (shrunk to 28×28: the ceiling) and as the app reads it once shown; inputs it refuses
    become blank (misread) digits. Returns (drawn, preprocessed, refused)."""
    rng = np.random.default_rng(seed)
    drawn, out, errors = torch.zeros(len(digits), 1, 28, 28), torch.zeros(len(digits), 1, 28, 28), 0
    for i, d in enumerate(digits):
        ink = kind.ink(d, rng)
        small = Image.fromarray(ink.astype(np.float32), "F").resize((28, 28), Image.Resampling.BOX)
        drawn[i, 0] = torch.from_numpy(np.asarray(small).clip(0, 1))
        try:
            out[i] = digit(kind.show(ink, rng))  # as the app reads it: an editor's value (a dict) too
        except InputError:
            errors += 1
    return drawn, out, errors


def bundled_models(weights: Path) -> dict[str, VAE]:
    """Every ``save_pretrained`` folder under ``weights``, by its relative path."""
    folders = sorted(p.parent for p in weights.rglob("model.safetensors"))
    return {str(f.relative_to(weights)): VAE.from_pretrained(str(f)).eval() for f in folders}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="test digits per kind (a fixed, seeded subset)")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from: {', '.join(KINDS)}")
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--data-dir", default=None, help="MNIST root (default: $VAE_HUB_DATA, else ./data)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in KINDS]:
        ap.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    try:
        clf = load_classifier(args.data_dir)
        models = bundled_models(args.weights)
        images, labels = load_mnist("test", args.data_dir)
    except (DataError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pick = torch.from_numpy(np.random.default_rng(args.seed).permutation(len(images))[: args.n])
    digits, labels = images[pick].numpy(), labels[pick]
    mnist_mean = float(digits.mean() / 255)
    clean = float((predict(clf, images[pick]) == labels).float().mean())
    print(f"{len(digits)} MNIST test digits per kind (seed {args.seed}); classifier on the raw digits: {clean:.1%}")
    print(f"models: {', '.join(models) or 'none found under ' + str(args.weights)}\n")

    cols = ["kind", "drawn", "input", *models, "mean px", "/MNIST", "err", "s"]
    widths = [12, 6, 6, *(max(8, len(m)) for m in models), 7, 7, 4, 5]
    print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths))))
    failed = []
    for k in kinds:
        t = time.perf_counter()
        drawn, x, errors = make_all(KINDS[k], digits, args.seed * 1000 + list(KINDS).index(k))
        ceiling = float((predict(clf, drawn) == labels).float().mean())
        acc = float((predict(clf, x) == labels).float().mean())
        recon = [float((predict(clf, m.reconstruct(x)) == labels).float().mean()) for m in models.values()]
        mean = float(x.mean())
        row = [k, f"{ceiling:.1%}", f"{acc:.1%}", *(f"{r:.1%}" for r in recon), f"{mean:.3f}"]
        row += [f"{mean / mnist_mean:.2f}", str(errors), f"{time.perf_counter() - t:.0f}"]
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))), flush=True)
        if acc < (SOFT_TARGET if k in SOFT else SHARP_TARGET) or abs(mean / mnist_mean - 1) > MEAN_TOLERANCE:
            failed.append(f"{k} (drawn {ceiling:.1%})")
    print(f"\nMNIST mean pixel value of these digits: {mnist_mean:.3f}. Total {time.perf_counter() - start:.0f} s.")
    print(f"Targets: input ≥ {SHARP_TARGET:.1%} (sharp), ≥ {SOFT_TARGET:.0%} ({', '.join(SOFT)}); mean within "
          f"±{MEAN_TOLERANCE:.0%}. " + (f"Missed on: {', '.join(failed)}." if failed else "All met."))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

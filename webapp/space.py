"""Deploy the demo as a Hugging Face Space: ``python -m webapp.space USER/NAME``.

Stages what the Space runs and nothing else: ``app.py`` and the packages it imports (:data:`PACKAGES`), the
bundled weights, the example digits, ``assets/`` (the latent-map caches: the Space needs no MNIST), ``LICENSE``, a
``requirements.txt`` and a ``README.md`` whose front matter configures the Space (``sdk: gradio`` at the version
``requirements.txt`` pins). Only regular files inside the checkout are taken: anything else (a symlink, a device, a
fifo) is refused by name. Then it creates the Space if needed and commits the staged folder as its whole content.
Token, ``--dry-run``, ``HF_ENDPOINT`` and exit codes (0 done, 1 the Hub refused, 2 bad input) are as for
``python -m training.push``.
"""

import fnmatch
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training import push
from webapp import ROOT, VARIANTS

PACKAGES = ("vae_hub", "webapp")  # what app.py imports from beside it
WEIGHT_FILES = ("config.json", "model.safetensors")  # all that app.py loads from a weights folder
MAP_CACHE_DIR = "assets/latent_map"  # webapp.latent_map.SHIPPED_DIR, relative to the checkout
# Never shipped: caches, hidden files, build metadata and anything that may be a pickle.
EXCLUDE = ("__pycache__", ".*", "*.pyc", "*.pyo", "*.egg-info", "*.pt", "*.pth", "*.bin", "*.ckpt", "*.pkl", "*.pickle")
SDK_PACKAGES = ("gradio", "gradio-client")  # installed by the Space itself at sdk_version
PYTHON_VERSION = "3.11"
DEFAULT_TITLE = "VAE on MNIST"


def build_parser() -> push.Parser:
    p = push.Parser("python -m webapp.space", __doc__.split("\n\n")[0])
    p.add_argument("repo_id", metavar="USER/NAME", help="the Space to create or update (ORG/NAME for an organisation)")
    p.add_argument(
        "--models",
        nargs="*",
        default=[],
        metavar="REPO_ID",
        help="Hub ids of the published models (the README's `models:`, linking them to the Space)",
    )
    p.add_argument("--title", default=DEFAULT_TITLE, help="the Space's title")
    p.add_argument("--private", action="store_true", help="create the Space private (an existing one keeps its own)")
    p.add_argument("--token", help="a write token (default: $HF_TOKEN, else the cached `hf auth login`; never printed)")
    p.add_argument("--message", default="Deploy the vae-hub demo", help="commit message")
    p.add_argument("--dry-run", action="store_true", help="write the Space's folder and list it; upload nothing")
    p.add_argument("--out", type=Path, help="with --dry-run: where to write the folder (new or empty)")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout to deploy from")
    return p


def tree(root: Path, folder: str) -> dict[str, Path]:
    """The files under ``root/folder`` that may ship, by their path in the Space; anything under it that is not a
    regular file or a folder (a symlink, a device, a fifo) is refused by name. Nothing is followed."""
    files = {}
    for top, dirs, names in os.walk(root / folder):  # a link to a folder is listed below, not entered
        dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, x) for x in EXCLUDE)]
        names = [n for n in names if not any(fnmatch.fnmatch(n, x) for x in EXCLUDE)]
        names += [d for d in dirs if os.path.islink(os.path.join(top, d))]
        files.update({p.relative_to(root).as_posix(): p for p in push.regular_files(Path(top), names).values()})
    return files


def source_files(root: Path) -> dict[str, Path]:
    """The files copied from the checkout, by their path in the Space (README.md and requirements.txt are written)."""
    files = push.regular_files(root, ("app.py", "LICENSE"))
    if len(files) < 2:
        raise push.PushError(f"{root} has no app.py or no LICENSE: run from (or pass --root) the vae-hub checkout")
    for pkg in PACKAGES:
        if not (root / pkg / "__init__.py").is_file():
            raise push.PushError(f"{root} has no package {pkg}/, which app.py imports")
        files.update(tree(root, pkg))
    served = {f"weights/{v}/model.safetensors" for v in VARIANTS}  # what app.py serves: not the binarized pair
    folders = sorted({p.parent for rel, p in tree(root, "weights").items() if rel in served})
    if not folders:
        raise push.PushError(f"no weights under {root / 'weights'}: train them (make train) before deploying")
    for folder in folders:  # each loaded strictly; regular files only
        checked = push.check_folder(folder)
        files.update({checked[n].relative_to(root).as_posix(): checked[n] for n in WEIGHT_FILES if n in checked})
    files.update({k: v for k, v in tree(root, "examples").items() if k.endswith(".png")})
    return files | tree(root, "assets")


def requirements(root: Path) -> tuple[list[str], str]:
    """The Space's requirements.txt (what ``pip install vae-hub[app]`` installs, at requirements.txt's pins, minus
    the Gradio SDK) and the Gradio version pinned there (the Space's ``sdk_version``)."""
    import tomllib

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        lines = (root / "requirements.txt").read_text(encoding="utf-8").splitlines()
        pins = {
            canonicalize_name(Requirement(x).name): x
            for x in (ln.split(" #")[0].strip() for ln in lines)
            if x and not x.startswith(("#", "-"))
        }
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    except (OSError, InvalidRequirement, tomllib.TOMLDecodeError, KeyError) as e:
        raise push.PushError(f"cannot read requirements.txt or pyproject.toml in {root}: {e}") from e
    deps = [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get("app", [])]
    out = [pins.get(canonicalize_name(Requirement(d).name), d) for d in deps]
    gradio = [s.version for s in Requirement(pins.get("gradio", "gradio")).specifier if s.operator == "=="]
    if len(gradio) != 1:
        raise push.PushError("requirements.txt must pin gradio exactly (gradio==X.Y.Z): it is the Space's sdk_version")
    return [r for r in out if canonicalize_name(Requirement(r).name) not in SDK_PACKAGES], gradio[0]


def readme(repo_id: str, models: Sequence[str], title: str, sdk_version: str, weights: Sequence[str]) -> str:
    """README.md: the Space's YAML configuration, then what the demo is."""
    from huggingface_hub import SpaceCardData

    data = SpaceCardData(
        title=title,
        sdk="gradio",
        sdk_version=sdk_version,
        python_version=PYTHON_VERSION,
        app_file="app.py",
        license="other",
        license_name="mit-and-cc-by-sa-3.0",
        license_link="LICENSE",
        models=list(models),
        emoji="🔢",
        colorFrom="indigo",
        colorTo="gray",
        pinned=False,
        short_description="Reconstruct, sample and explore a VAE trained on MNIST",  # the Hub allows 60 characters
    )
    return "\n\n".join(
        [
            f"---\n{data.to_yaml()}\n---",
            f"# {title}",
            "A variational autoencoder trained on MNIST, two ways: **SGVB** (Monte Carlo KL) and **KL-WO-E** "
            "(closed-form KL). Draw, upload or pick a digit to see the models reconstruct it, sample new digits, "
            "interpolate between two digits and browse the latent space.",
            "Models:",
            "\n".join(f"- [{m}](https://huggingface.co/{m})" for m in models) or "- the weights bundled in this Space",
            f"Bundled weights: {', '.join(f'`{w}`' for w in weights)}. The latent maps are precomputed in "
            f"`{MAP_CACHE_DIR}/`, so the Space needs no copy of MNIST.",
            f"Deployed with `python -m webapp.space {repo_id}` from the vae-hub repository. Code: MIT; weights and "
            "example digits (derived from MNIST): CC BY-SA 3.0. See `LICENSE`.\n",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    where = f"{push.endpoint()}/spaces/{args.repo_id}"

    def stage(out: Path) -> list[str]:  # the Space's exact content; a note for weights without a latent-map cache
        from vae_hub import VAE
        from webapp.latent_map import cache_path

        files = source_files(args.root)
        reqs, sdk_version = requirements(args.root)
        weights = sorted(Path(p).parent.as_posix() for p in files if p.endswith("model.safetensors"))

        def write_rest() -> None:
            (out / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
            text = readme(args.repo_id, args.models, args.title, sdk_version, weights)
            (out / "README.md").write_text(text, encoding="utf-8")

        lines = [push.write_folder(out, files, args.root, "Space folder", write_rest)]
        for w in weights:  # without MNIST such a Space maps only the example digits
            if not cache_path(VAE.from_pretrained(out / w), out / MAP_CACHE_DIR).is_file():
                lines.append(
                    f"note: no latent-map cache for {w} in {MAP_CACHE_DIR}; without MNIST the Space maps "
                    "only the example digits (run the app once with MNIST to build it)"
                )
        return lines

    def upload(api: Any, out: Path) -> str:
        api.create_repo(
            args.repo_id, repo_type="space", space_sdk="gradio", private=args.private or None, exist_ok=True
        )
        return api.upload_folder(
            repo_id=args.repo_id, repo_type="space", folder_path=out, commit_message=args.message, delete_patterns="*"
        ).commit_url

    after = f"the Space builds and starts on the Hub: {where}"
    where_private = where + (" (private)" if args.private else "")
    return push.publish(args, [args.repo_id, *args.models], where_private, "deploy", stage, upload, after)


if __name__ == "__main__":
    sys.exit(main())

"""Deploy the demo as a Hugging Face Space: ``python -m webapp.space USER/NAME``.

Stages what the Space runs and nothing else: ``app.py`` and the packages it imports (:data:`PACKAGES`), the
bundled weights, the example digits, ``assets/`` (the latent-map caches: the Space needs no MNIST), ``LICENSE``, a
``requirements.txt`` and a ``README.md`` whose front matter configures the Space (``sdk: gradio`` at the version
``requirements.txt`` pins). Only regular files inside the checkout are taken: anything else (a symlink, a device, a
fifo) is refused by name. Then it creates the Space if needed and commits the staged folder as its whole content.
Token, ``--dry-run``, ``HF_ENDPOINT`` and exit codes (0 done, 1 the Hub refused, 2 bad input) are as for
``python -m training.push``.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from training import push

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vae_hub", "webapp")  # what app.py imports from beside it
WEIGHT_FILES = ("config.json", "model.safetensors")  # all that app.py loads from a weights folder
MAP_CACHE_DIR = "assets/latent_map"  # webapp.latent_map.SHIPPED_DIR, relative to the checkout
# Never shipped: caches, hidden files, build metadata and anything that may be a pickle.
EXCLUDE = ("__pycache__", ".*", "*.pyc", "*.pyo", "*.egg-info", "*.pt", "*.pth", "*.bin", "*.ckpt", "*.pkl", "*.pickle")
SDK_PACKAGES = ("gradio", "gradio-client")  # installed by the Space itself at sdk_version
PYTHON_VERSION = "3.11"
DEFAULT_TITLE = "VAE on MNIST"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m webapp.space", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    p.add_argument("repo_id", metavar="USER/NAME", help="the Space to create or update (ORG/NAME for an organisation)")
    p.add_argument("--models", nargs="*", default=[], metavar="REPO_ID",
                   help="Hub ids of the published models (the README's `models:`, linking them to the Space)")
    p.add_argument("--title", default=DEFAULT_TITLE, help="the Space's title")
    p.add_argument("--private", action="store_true", help="create the Space private (an existing one keeps its own)")
    p.add_argument("--token", help="a write token (default: $HF_TOKEN, else the cached `hf auth login`; never printed)")
    p.add_argument("--message", default="Deploy the vae-hub demo", help="commit message")
    p.add_argument("--dry-run", action="store_true", help="write the Space's folder and list it; upload nothing")
    p.add_argument("--out", type=Path, help="with --dry-run: where to write the folder (new or empty)")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout to deploy from")
    return p  # fmt: skip


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
    folders = sorted({p.parent for rel, p in tree(root, "weights").items() if rel.endswith("/model.safetensors")})
    if not folders:
        raise push.PushError(f"no weights under {root / 'weights'}: train them (make train) before deploying")
    for folder in folders:
        push.check_folder(folder)  # loads strictly, and takes regular files only
        files.update({p.relative_to(root).as_posix(): p for p in push.regular_files(folder, WEIGHT_FILES).values()})
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
        pins = {canonicalize_name(Requirement(x).name): x for x in (ln.split(" #")[0].strip() for ln in lines)
                if x and not x.startswith(("#", "-"))}  # fmt: skip
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
        title=title, sdk="gradio", sdk_version=sdk_version, python_version=PYTHON_VERSION, app_file="app.py",
        license="other", license_name="mit-and-cc-by-sa-3.0", license_link="LICENSE", models=list(models),
        emoji="🔢", colorFrom="indigo", colorTo="gray", pinned=False,
        short_description="Reconstruct, sample and explore a VAE trained on MNIST",  # the Hub allows 60 characters
    )  # fmt: skip
    model_lines = [f"- [{m}](https://huggingface.co/{m})" for m in models] or ["- the weights bundled in this Space"]
    return "\n".join([
        f"---\n{data.to_yaml()}\n---", "", f"# {title}", "",
        "A variational autoencoder trained on MNIST, two ways: **SGVB** (Monte Carlo KL) and **KL-WO-E** (closed-form "
        "KL). Draw, upload or pick a digit to see the models reconstruct it, sample new digits, interpolate between "
        "two digits and browse the latent space.", "", "Models:", "", *model_lines, "",
        f"Bundled weights: {', '.join(f'`{w}`' for w in weights)}. The latent maps are precomputed in "
        f"`{MAP_CACHE_DIR}/`, so the Space needs no copy of MNIST.", "",
        f"Deployed with `python -m webapp.space {repo_id}` from the vae-hub repository. Code: MIT; weights and "
        "example digits (derived from MNIST): CC BY-SA 3.0. See `LICENSE`.", "",
    ])  # fmt: skip


def stage(out: Path, repo_id: str, models: Sequence[str], title: str, root: Path) -> list[Path]:
    """Write the Space's exact content into ``out`` (new or empty) and return its files, sorted."""
    files = source_files(root)
    reqs, sdk_version = requirements(root)
    weights = sorted(Path(p).parent.as_posix() for p in files if p.endswith("model.safetensors"))

    def write_rest() -> None:
        (out / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
        (out / "README.md").write_text(readme(repo_id, models, title, sdk_version, weights), encoding="utf-8")

    return push.write_folder(out, files, root, "Space folder", write_rest)


def missing_map_caches(staged: Path) -> list[str]:
    """Staged weights without a shipped latent-map cache: without MNIST the Space maps only the example digits."""
    from vae_hub import VAE
    from webapp.latent_map import cache_path

    folders = sorted(p.parent for p in (staged / "weights").rglob("model.safetensors"))
    return [f.relative_to(staged).as_posix() for f in folders
            if not cache_path(VAE.from_pretrained(f), staged / MAP_CACHE_DIR).is_file()]  # fmt: skip


def deploy(args: argparse.Namespace) -> int:
    for repo_id in (args.repo_id, *args.models):
        push.check_repo_id(repo_id)
    if args.out is not None and not args.dry_run:
        raise push.PushError("--out only goes with --dry-run")
    where = f"{push.endpoint()}/spaces/{args.repo_id}{' (private)' if args.private else ''}"
    token = push.token(args.token)
    if token is None and not args.dry_run:
        raise push.PushError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token")
    with tempfile.TemporaryDirectory(prefix="vae-hub-space-") as tmp:
        out = args.out or Path(tempfile.mkdtemp(prefix="vae-hub-space-") if args.dry_run else tmp)
        files = push.listing(stage(out, args.repo_id, args.models, args.title, args.root), out)
        note = "without MNIST the Space maps only the example digits (run the app once with MNIST to build it)"
        notes = [f"note: no latent-map cache for {w} in {MAP_CACHE_DIR}; {note}" for w in missing_map_caches(out)]
        if args.dry_run:
            if token is None:
                notes.append("note: no token found; log in with `hf auth login` (or set HF_TOKEN) before deploying")
            print("\n".join([f"dry run: would upload {out} to {where}:", files, *notes]))
            return 0

        def upload() -> str:
            from huggingface_hub import HfApi

            api = HfApi(endpoint=push.endpoint(), token=token)
            api.create_repo(args.repo_id, repo_type="space", space_sdk="gradio", private=args.private or None,
                            exist_ok=True)  # fmt: skip
            return api.upload_folder(repo_id=args.repo_id, repo_type="space", folder_path=out,
                                     commit_message=args.message, delete_patterns="*").commit_url  # fmt: skip

        url = push.send(upload)
        if url is None:
            return 1
    print("\n".join([f"deployed to {where}:", files, *notes, f"commit: {url}"]))
    print(f"the Space builds and starts on the Hub: {push.endpoint()}/spaces/{args.repo_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return push.run(deploy, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

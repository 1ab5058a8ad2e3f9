"""Deploy the demo as a Hugging Face Space: ``python -m webapp.space USER/NAME``.

Stages what the Space runs, and nothing else: ``app.py``, the Python packages it imports (:data:`PACKAGES`), every
``save_pretrained`` folder under ``weights/`` (``config.json`` and ``model.safetensors`` only), the example digits,
``assets/`` (the latent-map caches, so the Space needs no MNIST), ``LICENSE``, a ``requirements.txt`` and a
``README.md`` whose YAML front matter configures the Space (``sdk: gradio`` at the version ``requirements.txt``
pins). Then it creates the Space (``repo_type="space"``) if needed and commits the staged folder as the Space's
whole content: files from an earlier deploy that are no longer staged are deleted (``.gitattributes`` is kept).

Token, ``--dry-run``, ``HF_ENDPOINT`` and exit codes work as for ``python -m training.push``: 0 done, 1 the Hub
refused or could not be reached, 2 bad input.
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from huggingface_hub import HfApi, SpaceCardData
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from training.push import PushError, check_folder, check_repo_id, endpoint, listing, run, send
from training.push import token as resolve_token
from vae_hub import VAE

from .latent_map import cache_path

ROOT = Path(__file__).resolve().parent.parent
APP_FILE = "app.py"
# The packages app.py imports from next to it. One that does not exist is skipped: `webapp` appears when the app
# code moves out of the library.
PACKAGES = ("vae_hub", "webapp")
WEIGHTS_DIR = "weights"  # every save_pretrained folder below it, e.g. weights/sgvb, weights/z4/kl_wo_e
WEIGHTS_NAME = "model.safetensors"
WEIGHT_FILES = ("config.json", WEIGHTS_NAME)  # all that app.py loads from a weights folder
EXAMPLES = "examples/*.png"
ASSETS_DIR = "assets"
MAP_CACHE_DIR = "assets/latent_map"  # webapp.latent_map.SHIPPED_DIR, relative to the checkout
LICENSE = "LICENSE"
# Never shipped from a staged folder: caches, hidden files, build metadata and anything that may be a pickle.
EXCLUDE = ("__pycache__", ".*", "*.pyc", "*.pyo", "*.egg-info", "*.pt", "*.pth", "*.bin", "*.ckpt", "*.pkl", "*.pickle")
# Installed by the Space itself at `sdk_version`: pinning them again in requirements.txt could only conflict.
SDK_PACKAGES = ("gradio", "gradio-client")
PYTHON_VERSION = "3.11"
DEFAULT_TITLE = "VAE on MNIST"
SHORT_DESCRIPTION = "Reconstruct, sample and explore a VAE trained on MNIST"  # the Hub allows 60 characters


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m webapp.space",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("repo_id", metavar="USER/NAME", help="the Space to create or update (ORG/NAME for an organisation)")
    p.add_argument(
        "--models",
        nargs="*",
        default=[],
        metavar="REPO_ID",
        help="Hub ids of the published models (the README's `models:`, which links them to the Space), "
        "e.g. USER/vae-mnist-sgvb (default: none)",
    )
    p.add_argument("--title", default=DEFAULT_TITLE, help="the Space's title (default: %(default)s)")
    p.add_argument("--private", action="store_true", help="create the Space private (an existing one keeps its own)")
    p.add_argument("--token", help="a write token (default: $HF_TOKEN, else the cached `hf auth login`; never printed)")
    p.add_argument("--message", default="Deploy the vae-hub demo", help="commit message (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="write the Space's folder and list it; upload nothing")
    p.add_argument(
        "--out", type=Path, help="with --dry-run: where to write the folder, new or empty (default: a temporary one)"
    )
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout to deploy from (default: %(default)s)")
    return p


def _excluded(rel: Path) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in EXCLUDE)


def _tree(root: Path, folder: str) -> dict[str, Path]:
    """The files under ``root/folder`` (recursively) that may ship, by their path in the Space."""
    base = root / folder
    files = (p for p in base.rglob("*") if p.is_file() and not _excluded(p.relative_to(base)))
    return {p.relative_to(root).as_posix(): p for p in files}


def weight_folders(root: Path) -> list[Path]:
    """Every ``save_pretrained`` folder under ``root/weights``, each checked to load (strictly, without pickle)."""
    folders = sorted(p.parent for p in (root / WEIGHTS_DIR).rglob(WEIGHTS_NAME) if not _excluded(p.relative_to(root)))
    if not folders:
        raise PushError(f"no weights under {root / WEIGHTS_DIR}: train them (make train) before deploying")
    for folder in folders:
        check_folder(folder)
    return folders


def source_files(root: Path) -> dict[str, Path]:
    """The files copied from the checkout, by their path in the Space (README.md and requirements.txt are written)."""
    for name in (APP_FILE, LICENSE):
        if not (root / name).is_file():
            raise PushError(f"{root} has no {name}: run from (or pass --root) the vae-hub checkout")
    files = {APP_FILE: root / APP_FILE, LICENSE: root / LICENSE}
    packages = [pkg for pkg in PACKAGES if (root / pkg / "__init__.py").is_file()]
    if not packages:
        raise PushError(f"{root} holds none of the packages app.py imports ({', '.join(PACKAGES)})")
    for pkg in packages:
        files.update(_tree(root, pkg))
    for folder in weight_folders(root):
        files.update({(folder / n).relative_to(root).as_posix(): folder / n for n in WEIGHT_FILES})
    files.update({p.relative_to(root).as_posix(): p for p in sorted(root.glob(EXAMPLES))})
    if (root / ASSETS_DIR).is_dir():
        files.update(_tree(root, ASSETS_DIR))
    return files


def _pins(root: Path) -> dict[str, str]:
    """requirements.txt's lines by canonical package name (comments and pip options skipped)."""
    path = root / "requirements.txt"
    if not path.is_file():
        raise PushError(f"{root} has no requirements.txt: it holds the versions the Space installs")
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            pins[canonicalize_name(Requirement(line).name)] = line
        except InvalidRequirement as e:
            raise PushError(f"requirements.txt: cannot read {line!r}: {e}") from e
    return pins


def _project_dependencies(root: Path) -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError as e:  # Python 3.10
        raise PushError("deploying a Space needs Python >= 3.11 (it reads pyproject.toml with tomllib)") from e
    try:
        with open(root / "pyproject.toml", "rb") as f:
            project = tomllib.load(f)["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as e:
        raise PushError(f"cannot read the dependencies in {root / 'pyproject.toml'}: {e}") from e
    return [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get("app", [])]


def space_requirements(root: Path) -> list[str]:
    """The Space's requirements.txt: what ``pip install vae-hub[app]`` installs, at the versions that
    requirements.txt pins, minus the Gradio SDK (installed by the Space at ``sdk_version``) and minus test tools
    (they are not dependencies of the package)."""
    pins = _pins(root)
    lines = []
    for dep in _project_dependencies(root):
        name = canonicalize_name(Requirement(dep).name)
        if name not in SDK_PACKAGES:
            lines.append(pins.get(name, dep))
    return lines


def gradio_version(root: Path) -> str:
    """The Gradio version requirements.txt pins exactly: the Space's ``sdk_version``."""
    line = _pins(root).get("gradio")
    versions = [s.version for s in Requirement(line).specifier if s.operator == "=="] if line else []
    if len(versions) != 1:
        raise PushError("requirements.txt must pin gradio exactly (gradio==X.Y.Z): it is the Space's sdk_version")
    return versions[0]


def space_readme(repo_id: str, models: Sequence[str], title: str, sdk_version: str, weights: Iterable[str]) -> str:
    """README.md: the Space's YAML configuration, then what the demo is."""
    data = SpaceCardData(
        title=title,
        sdk="gradio",
        sdk_version=sdk_version,
        python_version=PYTHON_VERSION,
        app_file=APP_FILE,
        license="other",  # two licenses, see below
        license_name="mit-and-cc-by-sa-3.0",
        license_link=LICENSE,
        models=list(models),
        emoji="🔢",
        colorFrom="indigo",
        colorTo="gray",
        pinned=False,
        short_description=SHORT_DESCRIPTION,
    )
    model_lines = [f"- [{m}](https://huggingface.co/{m})" for m in models] or ["- the weights bundled in this Space"]
    return "\n".join(
        [
            f"---\n{data.to_yaml()}\n---",
            "",
            f"# {title}",
            "",
            "A variational autoencoder trained on MNIST, two ways: **SGVB** (Monte Carlo KL) and **KL-WO-E** "
            "(closed-form KL). Upload or draw a digit to see both reconstruct it, read its latent code, sample new "
            "digits, interpolate between two digits and browse the latent space.",
            "",
            "Models:",
            "",
            *model_lines,
            "",
            f"Bundled weights: {', '.join(f'`{w}`' for w in weights)}. The latent maps are precomputed in "
            f"`{MAP_CACHE_DIR}/`, so the Space needs no copy of MNIST.",
            "",
            f"Deployed with `python -m webapp.space {repo_id}` from the vae-hub repository. Code: MIT; weights and "
            "example digits (derived from MNIST): CC BY-SA 3.0. See `LICENSE`.",
            "",
        ]
    )


def stage(
    out: Path, repo_id: str, models: Sequence[str] = (), title: str = DEFAULT_TITLE, root: Path = ROOT
) -> list[Path]:
    """Write the Space's exact content into ``out`` (new or empty) and return its files, sorted."""
    files = source_files(root)
    requirements = space_requirements(root)
    weights = sorted(Path(p).parent.as_posix() for p in files if p.endswith(WEIGHTS_NAME))
    readme = space_readme(repo_id, models, title, gradio_version(root), weights)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PushError(f"{out} exists and is not an empty folder; choose a new --out")
    try:
        for rel, src in files.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / rel)
        (out / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        (out / "README.md").write_text(readme, encoding="utf-8")
    except OSError as e:
        raise PushError(f"cannot write the Space folder {out}: {e}") from e
    return sorted(p for p in out.rglob("*") if p.is_file())


def missing_map_caches(staged: Path) -> list[str]:
    """Staged weights without a shipped latent-map cache: without MNIST the Space maps only the example digits."""
    folders = sorted(p.parent for p in (staged / WEIGHTS_DIR).rglob(WEIGHTS_NAME))
    return [
        f.relative_to(staged).as_posix()
        for f in folders
        if not cache_path(VAE.from_pretrained(f), staged / MAP_CACHE_DIR).is_file()
    ]


def upload(staged: Path, repo_id: str, token: str, private: bool, message: str) -> str:
    """Create the Space if needed and make the staged folder its whole content; return the commit URL."""
    api = HfApi(endpoint=endpoint(), token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private or None, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        repo_type="space",
        folder_path=staged,
        commit_message=message,
        delete_patterns="*",  # stale files from an earlier deploy go; the client always keeps .gitattributes
    )
    return info.commit_url


def main(argv: list[str] | None = None) -> int:
    return run(_deploy, build_parser(), argv)


def _deploy(args: argparse.Namespace) -> int:
    for repo_id in (args.repo_id, *args.models):
        check_repo_id(repo_id)
    if args.out is not None and not args.dry_run:
        raise PushError("--out only goes with --dry-run")
    where = f"{endpoint()}/spaces/{args.repo_id}{' (private)' if args.private else ''}"
    token = resolve_token(args.token)
    if token is None and not args.dry_run:
        raise PushError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token")
    with tempfile.TemporaryDirectory(prefix="vae-hub-space-") as tmp:
        out = args.out or Path(tempfile.mkdtemp(prefix="vae-hub-space-") if args.dry_run else tmp)
        files = listing(stage(out, args.repo_id, args.models, args.title, args.root), out)
        notes = [
            f"note: no latent-map cache for {w} in {MAP_CACHE_DIR}; without MNIST the Space maps only the "
            "example digits (run the app once with MNIST to build it)"
            for w in missing_map_caches(out)
        ]
        if args.dry_run:
            if token is None:
                notes.append("note: no token found; log in with `hf auth login` (or set HF_TOKEN) before deploying")
            print("\n".join([f"dry run: would upload {out} to {where}:", files, *notes]))
            return 0
        url = send(lambda: upload(out, args.repo_id, token, args.private, args.message))
        if url is None:
            return 1
    print("\n".join([f"deployed to {where}:", files, *notes, f"commit: {url}"]))
    print(f"the Space builds and starts on the Hub: {endpoint()}/spaces/{args.repo_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

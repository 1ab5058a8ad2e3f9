"""Publish a trained model: ``python -m training.push weights/sgvb --repo-id USER/vae-mnist-sgvb``.

Uploads a ``save_pretrained`` folder (config.json, model.safetensors, metrics, figures) with its model card
(README.md) re-rendered for the real repo id. The token comes from ``--token``, else ``HF_TOKEN``, else the login
cached by ``hf auth login``; it is never printed. ``--dry-run`` writes the exact folder that would be uploaded
and lists it, without a token or any network access. The Hub is ``$HF_ENDPOINT`` if set, else huggingface.co.

Exit codes: 0 done, 1 the Hub refused the upload or could not be reached, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from vae_hub import VAE, WeightsError
from vae_hub.files import CONFIG_NAME, EVAL_NAME, FIGURES, METRICS_NAME, PICKLE_NAMES, TRAINING_ARGS_NAME, WEIGHTS_NAME

from .card import write_model_card

try:  # the HTTP client under huggingface_hub: httpx2 since 2.0, httpx before
    from httpx2 import TransportError
except ImportError:  # pragma: no cover
    from httpx import TransportError

# Everything else in the folder (checkpoints, pickles, stray files) stays home.
DATA_FILES = (CONFIG_NAME, WEIGHTS_NAME, TRAINING_ARGS_NAME, METRICS_NAME, EVAL_NAME, *FIGURES.values())
T = TypeVar("T")


class PushError(Exception):
    """Bad input: reported as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.push",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("folder", type=Path, help="a save_pretrained folder, e.g. weights/sgvb")
    p.add_argument("--repo-id", required=True, help="USER/NAME (or ORG/NAME) on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo private (no effect if it exists)")
    p.add_argument("--token", help="a write token; without it $HF_TOKEN, else the login cached by `hf auth login`")
    p.add_argument("--revision", "--branch", dest="revision", default="main", help="branch to push to (created)")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--dry-run", action="store_true", help="write the upload folder and list it; upload nothing")
    p.add_argument("--out", type=Path, help="with --dry-run: where to write the folder (new or empty)")
    return p


def check_repo_id(repo_id: str) -> None:
    """A Hub repo id (model or Space) of the form NAMESPACE/NAME, with the Hub's own rules on characters."""
    if repo_id.count("/") != 1:
        raise PushError(f"bad repo id {repo_id!r}: expected USER/NAME, e.g. alice/vae-mnist-sgvb")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PushError(f"bad repo id {repo_id!r}: {e}") from e


def check_folder(folder: Path) -> list[Path]:
    """The files to upload from ``folder``, after checking that the model in it loads (strictly, without pickle)."""
    if not folder.exists():
        raise PushError(f"no such folder: {folder}")
    if not folder.is_dir():
        raise PushError(f"{folder} is not a folder: pass the save_pretrained folder that holds {WEIGHTS_NAME}")
    if not (folder / WEIGHTS_NAME).is_file():
        pickles = [n for n in PICKLE_NAMES if (folder / n).is_file()]
        why = f" ({pickles[0]} is a pickle file, which is never pushed)" if pickles else ""
        raise PushError(f"{folder} has no {WEIGHTS_NAME}{why}: save the model with VAE.save_pretrained first")
    try:
        VAE.from_pretrained(folder)
    except WeightsError as e:
        raise PushError(f"the model in {folder} does not load, so it is not pushed: {e}") from e
    return [folder / name for name in DATA_FILES if (folder / name).is_file()]


def stage(folder: Path, repo_id: str, out: Path) -> list[Path]:
    """Write the exact upload folder into ``out``: the data files and a model card for ``repo_id``."""
    files = check_folder(folder)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PushError(f"{out} exists and is not an empty folder; choose a new --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for src in files:
            shutil.copyfile(src, out / src.name)
    except OSError as e:
        raise PushError(f"cannot write the upload folder {out}: {e}") from e
    try:
        write_model_card(out, repo_id)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PushError(f"cannot write the model card from {folder}: {e}") from e
    try:
        VAE.from_pretrained(out)  # the staged copy loads too
    except WeightsError as e:
        raise PushError(f"the staged copy in {out} does not load: {e}") from e
    return sorted(out.iterdir())


def resolve_token(cli_token: str | None) -> str | None:
    """``--token``, else ``HF_TOKEN``, else the cached login."""
    return cli_token or os.environ.get("HF_TOKEN") or get_token()


def endpoint() -> str:
    """``$HF_ENDPOINT`` read now (not at import, as ``huggingface_hub.constants`` does), else huggingface.co."""
    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def upload(staged: Path, repo_id: str, token: str, private: bool, revision: str, message: str | None) -> str:
    """Create the repo (and branch) if needed and commit the staged folder; return the commit URL."""
    api = HfApi(endpoint=endpoint(), token=token)
    api.create_repo(repo_id, private=private or None, exist_ok=True)
    if revision != constants.DEFAULT_REVISION:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=staged,
        revision=revision,
        commit_message=message or f"Upload VAE ({staged.name}) with vae-hub",
    )
    return info.commit_url


def hub_message(e: HfHubHTTPError) -> str:
    """One line on why the Hub refused, with a hint for the usual causes (never the token)."""
    status = e.response.status_code if e.response is not None else None
    detail = e.server_message or next((line for line in str(e).splitlines() if line.strip()), "")
    if status == 401:
        return f"the Hub rejected the token ({detail}); log in again with `hf auth login` or pass --token"
    if status == 403:
        return f"the Hub refused ({detail}); check the namespace and that the token has write access"
    return f"the Hub refused the upload: {detail} (HTTP {status})"


def send(upload_fn: Callable[[], T]) -> T | None:
    """Run an upload; if the Hub refuses it or cannot be reached, print one line and return None (exit code 1)."""
    try:
        return upload_fn()
    except HfHubHTTPError as e:
        print(f"error: {hub_message(e)}", file=sys.stderr)
    except (TransportError, OSError) as e:
        print(f"error: could not reach the Hub at {endpoint()}: {e}", file=sys.stderr)
    except ValueError as e:  # e.g. the Hub's metadata check of README.md
        print(f"error: {e}".replace("\n", " "), file=sys.stderr)
    return None


def listing(files: list[Path], root: Path) -> str:
    """The staged files with their sizes, as paths relative to ``root``, and the total."""
    rows = [f"{f.stat().st_size:>10,d}  {f.relative_to(root).as_posix()}" for f in files]
    total = sum(f.stat().st_size for f in files)
    return "\n".join([*rows, f"{total:>10,d}  total bytes, {len(files)} files"])


def run(command: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv`` and run ``command``; bad input (:class:`PushError`) is one line on stderr and exit code 2."""
    args = parser.parse_args(argv)
    try:
        return command(args)
    except PushError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run(_push, build_parser(), argv)


def _push(args: argparse.Namespace) -> int:
    check_repo_id(args.repo_id)
    if args.out is not None and not args.dry_run:
        raise PushError("--out only goes with --dry-run")
    where = f"{endpoint()}/{args.repo_id} (revision {args.revision}{', private' if args.private else ''})"
    if args.dry_run:
        out = args.out or Path(tempfile.mkdtemp(prefix="vae-hub-push-"))
        files = stage(args.folder, args.repo_id, out)
        print(f"dry run: would upload {out} to {where}:\n{listing(files, out)}")
        if resolve_token(args.token) is None:
            print("note: no token found; log in with `hf auth login` (or set HF_TOKEN) before pushing")
        return 0
    check_folder(args.folder)
    token = resolve_token(args.token)
    if token is None:
        raise PushError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token")
    with tempfile.TemporaryDirectory(prefix="vae-hub-push-") as tmp:
        staged = Path(tmp) / args.folder.resolve().name
        files = listing(stage(args.folder, args.repo_id, staged), staged)
        url = send(lambda: upload(staged, args.repo_id, token, args.private, args.revision, args.message))
        if url is None:
            return 1
    print(f"pushed to {where}:\n{files}\ncommit: {url}")
    revision = "" if args.revision == constants.DEFAULT_REVISION else f', revision="{args.revision}"'
    print(f'load it with: VAE.from_pretrained("{args.repo_id}"{revision})')
    return 0


if __name__ == "__main__":
    sys.exit(main())

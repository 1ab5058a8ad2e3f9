"""Publish a trained model: ``python -m training.push weights/sgvb --repo-id USER/vae-mnist-sgvb``.

Uploads the model folder's data files (regular files only: anything else is refused by name) with its card
re-rendered for the repo id. The token (``--token``, else ``HF_TOKEN``, else ``hf auth login``) is never printed;
``--dry-run`` needs neither token nor network. The Hub is ``$HF_ENDPOINT`` if set, else huggingface.co.

Exit codes: 0 done, 1 the Hub refused the upload or could not be reached, 2 bad input.
"""

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from training.cli import FIGURES, Parser, fail

DATA_FILES = ("config.json", "model.safetensors", "training_args.json", "metrics.json", "eval.json")
DATA_FILES += tuple(f"{name}.png" for name in FIGURES)
Stage = Callable[[Path], list[str]]  # stage(out) writes the folder to upload and returns its listing
Upload = Callable[[Any, Path], str]  # upload(api, out) returns the commit's URL


class PushError(Exception):
    """Bad input: one line, exit code 2."""


def build_parser() -> Parser:
    p = Parser("python -m training.push", __doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="a save_pretrained folder, e.g. weights/sgvb")
    p.add_argument("--repo-id", required=True, help="USER/NAME (or ORG/NAME) on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo private (an existing one keeps its own)")
    p.add_argument("--token", help="a write token (default: $HF_TOKEN, else the login of `hf auth login`)")
    p.add_argument("--revision", "--branch", dest="revision", default="main", help="the branch to push to (created)")
    p.add_argument("--message", help="commit message")
    p.add_argument("--dry-run", action="store_true", help="write the upload folder and list it; upload nothing")
    p.add_argument("--out", type=Path, help="with --dry-run: where to write the folder (new or empty)")
    return p


def check_repo_id(repo_id: str) -> None:
    """NAMESPACE/NAME, with the Hub's own rules on characters."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        if repo_id.count("/") != 1:
            raise HFValidationError("expected USER/NAME, e.g. alice/vae-mnist-sgvb")
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PushError(f"bad repo id {repo_id!r}: {str(e).splitlines()[0]}") from e


def regular_files(root: Path, names: Iterable[str]) -> dict[str, Path]:
    """``root/name`` for each name that exists, each a regular file inside ``root``: not a symlink (to a secret
    elsewhere, say ``/proc/self/environ``), a device or a folder. Anything else is refused by name."""
    files = {}
    for name in [n for n in names if os.path.lexists(root / n)]:
        path = root / name
        mode = os.lstat(path).st_mode
        inside = Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
        if not stat.S_ISREG(mode) or not inside:
            kind = "a symlink" if stat.S_ISLNK(mode) else "not a regular file"
            raise PushError(f"{path} is {kind}; only regular files inside {root} are published")
        files[name] = path
    return files


def check_folder(folder: Path) -> dict[str, Path]:
    """The files to upload from ``folder``, after checking that its model loads (strictly, without pickle)."""
    from vae_hub import VAE, WeightsError

    if not folder.is_dir():
        raise PushError(f"{folder} is not a model folder: pass the folder that holds model.safetensors")
    files = regular_files(folder, DATA_FILES)
    if "model.safetensors" not in files:
        pickles = [n for n in ("pytorch_model.bin", "model.pt", "model.pth", "model.ckpt") if (folder / n).exists()]
        why = f" ({pickles[0]} is a pickle file, which is never pushed)" if pickles else ""
        raise PushError(f"{folder} has no model.safetensors{why}: save the model with VAE.save_pretrained first")
    try:
        VAE.from_pretrained(folder)
    except WeightsError as e:
        raise PushError(f"the model in {folder} does not load, so it is not pushed: {e}") from e
    return files


def write_folder(out: Path, files: dict[str, Path], root: Path, what: str, rest: Callable[[], None]) -> str:
    """Copy ``files`` (by their path in ``out``) into ``out``, new or empty, then ``rest()``; list the files of
    ``out`` with their sizes. A source replaced by a link since it was checked is refused by name, never followed."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PushError(f"{out} exists and is not an empty folder; choose a new --out")
    try:
        for rel, src in files.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / rel, follow_symlinks=False)
            if not stat.S_ISREG(os.lstat(out / rel).st_mode):
                raise PushError(f"{src} is not a regular file; only regular files inside {root} are published")
        rest()
    except (OSError, ValueError, KeyError, TypeError) as e:  # the card's and README's renderers raise the last three
        raise PushError(f"cannot write the {what} {out}: {e}") from e
    written = sorted(p for p in out.rglob("*") if p.is_file())
    rows = [f"{f.stat().st_size:>10,d}  {f.relative_to(out).as_posix()}" for f in written]
    return "\n".join([*rows, f"{sum(f.stat().st_size for f in written):>10,d}  total bytes, {len(written)} files"])


def endpoint() -> str:
    """``$HF_ENDPOINT`` read now (``huggingface_hub.constants`` reads it at import), else huggingface.co."""
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def send(upload: Callable[[], str]) -> str | None:
    """Run an upload; if the Hub refuses it or cannot be reached, print one line and return None (exit code 1)."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return upload()
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        detail = e.server_message or str(e).splitlines()[0]
        hint = {
            401: " (the token was rejected: log in again with `hf auth login` or pass --token)",
            403: " (check the namespace, and that the token may write)",
        }.get(status, "")
        print(f"error: the Hub refused the upload: {detail} (HTTP {status}){hint}", file=sys.stderr)
    except ValueError as e:  # the client's own check of the card's metadata
        print(f"error: the Hub would refuse the card: {str(e).splitlines()[0]}", file=sys.stderr)
    except Exception as e:  # no network: the HTTP client's transport errors, OSError
        print(f"error: could not reach the Hub at {endpoint()} ({type(e).__name__}: {e})", file=sys.stderr)
    return None


def publish(args: Any, repo_ids: Iterable[str], where: str, verb: str, stage: Stage, upload: Upload, after: str) -> int:
    """What this tool and ``webapp.space`` do once their options are parsed: check the repo ids, ``stage`` the folder
    into ``--out`` (with ``--dry-run``) or a temporary folder and print its listing; unless a dry run, ``upload`` it
    with the token and print ``after``. Returns the exit code: 0 done, 1 the Hub refused, 2 bad input (one line)."""
    from huggingface_hub import HfApi, get_token

    try:
        for repo_id in repo_ids:
            check_repo_id(repo_id)
        if args.out is not None and not args.dry_run:
            raise PushError("--out only goes with --dry-run")
        secret = args.token or os.environ.get("HF_TOKEN") or get_token()
        with tempfile.TemporaryDirectory(prefix=f"vae-hub-{verb}-") as tmp:
            out = args.out or Path(tempfile.mkdtemp(prefix=f"vae-hub-{verb}-") if args.dry_run else tmp)
            lines = stage(out)  # the input is checked before the token
            if args.dry_run:
                print("\n".join([f"dry run: would upload {out} to {where}:", *lines]))
                if secret is None:
                    print(f"note: no token found; log in with `hf auth login` (or set HF_TOKEN) before {verb}ing")
                return 0
            if secret is None:
                raise PushError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass --token")
            url = send(lambda: upload(HfApi(endpoint=endpoint(), token=secret), out))
    except PushError as e:
        return fail(str(e))
    if url is None:
        return 1
    print("\n".join([f"{verb}ed to {where}:", *lines, f"commit: {url}", after]))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    where = f"{endpoint()}/{args.repo_id} (revision {args.revision}{', private' if args.private else ''})"

    def stage(out: Path) -> list[str]:  # copies of the data files and a card for the repo id
        from training.card import write_card

        files = check_folder(args.folder)
        return [write_folder(out, files, args.folder, "upload folder", lambda: write_card(out, args.repo_id))]

    def upload(api: Any, out: Path) -> str:
        api.create_repo(args.repo_id, private=args.private or None, exist_ok=True)
        if args.revision != "main":
            api.create_branch(args.repo_id, branch=args.revision, exist_ok=True)
        message = args.message or f"Upload VAE ({args.folder.name}) with vae-hub"
        return api.upload_folder(
            repo_id=args.repo_id, folder_path=out, revision=args.revision, commit_message=message
        ).commit_url

    revision = "" if args.revision == "main" else f', revision="{args.revision}"'
    after = f'load it with: VAE.from_pretrained("{args.repo_id}"{revision})'
    return publish(args, [args.repo_id], where, "push", stage, upload, after)


if __name__ == "__main__":
    sys.exit(main())

"""What the command-line tools share: errors as one line, and options checked for kind and range."""

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

FIGURES = ("samples", "reconstructions", "latent", "latent_means", "curves")  # <name>.png beside the weights


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help  # nothing to add, or the help says it already
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """``argparse`` with the defaults in ``--help`` and a bad option reported in one line (exit code 2)."""

    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, formatter_class=_Help)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer that is at least ``low``."""

    def parse(text: str) -> int:
        if (value := int(text)) < low:
            raise ValueError(text)
        return value

    parse.__name__ = f"int ≥ {low}"  # what argparse names in its message
    return parse


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file's object, ``{}`` where there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(path: Path, data: Any) -> None:
    """JSON into a temporary file renamed over ``path``: a reader sees the old file or the whole new one."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as f:
        f.write(json.dumps(data, indent=1) + "\n")
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def replace_folder(folder: Path, fill: Callable[[Path], None]) -> None:
    """Write a folder all or nothing: ``fill`` a new one beside it, then swap it in; on any failure the previous
    folder stays as it was and the half-written one is removed."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.new-"))
    old = staging.with_name(staging.name.replace(".new-", ".old-"))
    try:
        fill(staging)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the folder from everyone else
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists() and not folder.exists():
            old.rename(folder)
        raise
    shutil.rmtree(old, ignore_errors=True)

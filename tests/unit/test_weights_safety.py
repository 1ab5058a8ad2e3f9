"""Untrusted weights: ``VAE.from_pretrained`` refuses every malformed folder with a WeightsError that names the
problem, never unpickles anything, and no Python file in the code base can unpickle either."""

from __future__ import annotations

import io
import json
import shutil
import struct
import sys
import time
import tokenize
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from vae_hub import VAE, VAEConfig, WeightsError

ROOT = Path(__file__).resolve().parents[2]
SMALL = VAEConfig(hidden_dims=[32, 8, 2])


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    VAE(SMALL).save_pretrained(path := tmp_path_factory.mktemp("saved") / "model")
    return path


@pytest.fixture
def folder(saved: Path, tmp_path: Path) -> Path:
    """A valid save_pretrained folder of a small model, to be damaged by each test (a copy: saving renders a card)."""
    return Path(shutil.copytree(saved, tmp_path / "model"))


def refuse(source: str | Path, pattern: str) -> WeightsError:
    with pytest.raises(WeightsError, match=pattern) as info:
        VAE.from_pretrained(source)
    return info.value


def test_the_intact_folder_loads(folder: Path) -> None:
    assert VAE.from_pretrained(folder).config.hidden_dims == [32, 8, 2]


# --- model.safetensors: truncated, corrupted ---


def _header(meta: dict) -> bytes:
    raw = json.dumps(meta).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated data"),
        pytest.param(lambda b: b[:20], id="truncated header"),
        pytest.param(lambda b: b[:4], id="shorter than the length prefix"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"\x00" * len(b), id="zeroed"),
        pytest.param(lambda b: struct.pack("<Q", 2**62) + b[8:], id="huge header length"),
        pytest.param(lambda b: b[:8] + b"{not json" + b[17:], id="header not json"),
        pytest.param(
            lambda b: (
                _header({"encoder.0.weight": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4e6]}})
                + b"\x00" * 64
            ),
            id="offsets past the end",
        ),
        pytest.param(
            lambda b: (
                _header({"encoder.0.weight": {"dtype": "F32", "shape": [10], "data_offsets": [0, 8]}}) + b"\x00" * 8
            ),
            id="shape does not match the byte count",
        ),
    ],
)
def test_corrupt_safetensors_is_refused(folder: Path, damage: Callable[[bytes], bytes]) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    refuse(folder, "model.safetensors is corrupt or truncated")


# --- tensors with wrong names, shapes, dtypes, values ---


def _rewrite(folder: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    state = load_file(folder / "model.safetensors")
    edit(state)
    save_file(state, folder / "model.safetensors")


def test_renamed_tensor_is_refused(folder: Path) -> None:
    _rewrite(folder, lambda s: s.__setitem__("encoder.0.w", s.pop("encoder.0.weight")))
    refuse(folder, r"missing tensors \['encoder.0.weight'\], unexpected tensors \['encoder.0.w'\]")


def test_missing_tensor_is_refused(folder: Path) -> None:
    _rewrite(folder, lambda s: s.pop("encoder.4.bias"))
    refuse(folder, r"missing tensors \[.encoder.4.bias.\]")


def test_extra_tensor_is_refused(folder: Path) -> None:
    _rewrite(folder, lambda s: s.__setitem__("backdoor", torch.zeros(3)))
    refuse(folder, r"unexpected tensors \['backdoor'\]")


def test_wrong_shape_is_refused(folder: Path) -> None:
    _rewrite(folder, lambda s: s.__setitem__("encoder.0.weight", s["encoder.0.weight"].T.contiguous()))
    refuse(folder, r"tensor 'encoder.0.weight' has shape \(784, 32\) but config.json implies \(32, 784\)")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(lambda t: t.to(torch.int32), "is torch.int32, not a float", id="integer dtype"),
        pytest.param(lambda t: t.to(torch.float8_e4m3fn), "is torch.float8_e4m3fn, not a float", id="float8"),
        pytest.param(lambda t: t.index_fill(0, torch.tensor([0]), float("nan")), "holds NaN or infinite", id="nan"),
        pytest.param(lambda t: t.index_fill(0, torch.tensor([0]), float("inf")), "holds NaN or infinite", id="inf"),
    ],
)
def test_non_finite_or_non_float_tensor_is_refused(folder: Path, value: Callable, message: str) -> None:
    _rewrite(folder, lambda s: s.__setitem__("decoder.0.bias", value(s["decoder.0.bias"])))
    refuse(folder, f"tensor 'decoder.0.bias' {message}")


# --- config.json: unknown keys and activations, wrong dims, invalid JSON, wrong types ---


def _set_config(folder: Path, edit: Callable[[dict], object] | None = None, raw: bytes | None = None) -> None:
    path = folder / "config.json"
    if raw is None:
        data = json.loads(path.read_text())
        data = edit(data) or data
        raw = json.dumps(data).encode()
    path.write_bytes(raw)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda c: c.update(dropout=0.5), r"unknown keys \['dropout'\]"),
        (lambda c: c.update(regularizer="sgvb"), r"unknown keys \['regularizer'\]; config.json holds only"),
        (lambda c: c.update(act_fun="x" * 60_000), r"'act_fun' must be of type str, got 'xxxx"),
        (lambda c: c.update(act_fun="swishy"), r"unknown activation 'swishy'"),
        (lambda c: c.update(hidden_dims=[64, 8, 2]), r"has shape \(\d+,( \d+)?\) but config.json implies"),
        (lambda c: c.update(hidden_dims=[32, 8, 3]), r"holds μ and log σ² together, so it must be even; got 3"),
        (lambda c: c.update(hidden_dims=[32, 2]), r"missing tensors|unexpected tensors"),
        (lambda c: c.update(input_dim=100), r"has shape .* but config.json implies"),
        # refused by the caps before anything is allocated (~3 TB; 100,000 layers took 42 s and a 9 MB message)
        (lambda c: c.update(hidden_dims=[10**9, 8, 2]), r"layer widths are capped at 65,536"),
        (lambda c: c.update(input_dim=10**400), r"layer widths are capped at 65,536"),
        (lambda c: c.update(hidden_dims=[8] * 1000), r"hidden_dims must have 1 to 32 entries, got 1000$"),
        (lambda c: c.update(hidden_dims=[1e30, 4]), r"'hidden_dims' must be of type list\[int\]"),
        (lambda c: c.update(hidden_dims=[float("inf"), 4]), r"'hidden_dims' must be of type list\[int\]"),
        (lambda c: c.update(hidden_dims=[-32, 8, 2]), r"dims must be positive"),
        (lambda c: c.update(hidden_dims=[]), r"hidden_dims must have 1 to 32 entries"),
        (lambda c: c.update(input_dim="784"), r"'input_dim' must be of type int, got '784'"),
        (lambda c: c.update(input_dim=784.0), r"'input_dim' must be of type int"),
        (lambda c: c.update(input_dim=True), r"'input_dim' must be of type int, got True"),
        (lambda c: c.update(input_dim=None), r"'input_dim' must be of type int, got None"),
        (lambda c: c.update(hidden_dims=[32, "8", 2]), r"'hidden_dims' must be of type list\[int\]"),
        (lambda c: c.update(hidden_dims=32), r"'hidden_dims' must be of type list\[int\]"),
        (lambda c: c.update(act_fun=3), r"'act_fun' must be of type str"),
        (lambda c: [c], r"config must be a JSON object"),
        (lambda c: "gelu", r"config must be a JSON object"),
    ],
)
def test_bad_config_is_refused(folder: Path, edit: Callable[[dict], object], pattern: str) -> None:
    _set_config(folder, edit)
    refuse(folder, pattern)


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        (b"[" * 50_000 + b"]" * 50_000, r"config.json is not a regular file of 1 to 65,536 bytes \(100,000 bytes\)"),
        (b'{"hidden_dims": [' + b"8, " * 30_000 + b"4]}", r"not a regular file of 1 to 65,536 bytes"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, r"nested too deeply"),  # under the size cap: RecursionError
    ],
)
def test_hostile_config_is_refused_quickly_in_one_line(folder: Path, raw: bytes, pattern: str) -> None:
    _set_config(folder, raw=raw)
    t0 = time.perf_counter()
    error = refuse(folder, pattern)
    assert time.perf_counter() - t0 < 1.0 and "\n" not in str(error) and len(str(error)) < 500


@pytest.mark.parametrize("raw", [b"{", b'{"input_dim": 784,}', b"\xff\xfe\x00garbage"])
def test_config_that_is_not_json_is_refused(folder: Path, raw: bytes) -> None:
    _set_config(folder, raw=raw)
    refuse(folder, "config.json is not valid JSON")


@pytest.mark.parametrize("target", ["/proc/self/environ", "/dev/zero", "empty"])
def test_a_config_that_is_a_special_or_empty_file_is_refused_unread(folder: Path, target: str) -> None:
    (folder / "config.json").unlink()
    if target == "empty":
        (folder / "config.json").touch()
    else:
        (folder / "config.json").symlink_to(target)
    refuse(folder, "config.json is not a regular file of 1 to 65,536 bytes")


# --- missing files ---


def test_missing_weights_is_refused(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    err = refuse(folder, "no model.safetensors found")
    assert "pickle" not in str(err)


def test_missing_config_is_refused(folder: Path) -> None:
    (folder / "config.json").unlink()
    refuse(folder, "no config.json found; it must sit beside model.safetensors")


def test_empty_or_absent_folder_is_refused(tmp_path: Path, folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    refuse(tmp_path / "empty", "no config.json found")
    refuse(tmp_path / "absent", "no such model folder")
    refuse("./absent", "no such model folder")
    refuse(folder / "model.safetensors", "is a file: pass the folder that holds config.json and model.safetensors")


# --- pickle files are refused, never opened ---


@contextmanager
def opened_files():
    """Record every file the interpreter opens inside the block (a CPython audit hook; they cannot be removed)."""
    seen: list[str] = []
    _AUDIT["sink"] = seen
    try:
        yield seen
    finally:
        _AUDIT["sink"] = None


_AUDIT: dict[str, list[str] | None] = {"sink": None}


def _audit(event: str, args: tuple) -> None:
    sink = _AUDIT["sink"]
    if sink is not None and event == "open" and isinstance(args[0], str | Path):
        sink.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "model.ckpt"])
def test_pickle_only_folder_is_refused_without_opening_it(folder: Path, name: str) -> None:
    (folder / "model.safetensors").rename(folder / name)  # the content does not matter: it is never read
    with opened_files() as seen:
        err = refuse(folder, f"It holds {name}, a pickle file, which is refused: unpickling can run arbitrary code")
    assert "Convert it to safetensors" in str(err)
    assert not [p for p in seen if p.endswith(name)]


def test_the_open_recorder_sees_what_python_opens(folder: Path) -> None:
    with opened_files() as seen:  # the control for the test above: torch.load would open through Python too
        VAE.from_pretrained(folder)
    assert str(folder / "config.json") in seen


# --- the code base never unpickles ---

# Names that only occur in code that (un)pickles. Found as code tokens, so prose about pickles and these very
# strings (which tokenize as STRING tokens) do not count.
PICKLE_NAMES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "Unpickler", "read_pickle", "joblib"}
SCANNED = ["vae_hub", "training", "webapp", "benchmarks", "tests", "app.py"]


def pickle_uses(source: str) -> list[str]:
    """Lines that use pickle: the modules above, ``allow_pickle=True``, or ``torch.load`` without
    ``weights_only=True`` (``torch.save`` only writes: training checkpoints are read back with weights_only=True)."""
    toks = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type in (tokenize.NAME, tokenize.OP)]
    found = []
    for i, t in enumerate(toks):
        text = [u.string for u in toks[i : i + 4]]
        if t.string in PICKLE_NAMES or text[:3] == ["allow_pickle", "=", "True"]:
            found.append(t.line.strip())
        elif text[:4] == ["from", "torch", "import", "load"]:
            found.append(t.line.strip())
        elif text == ["torch", ".", "load", "("]:
            depth, j, args = 0, i + 3, []
            while j < len(toks):  # the tokens of the call's argument list
                depth += {"(": 1, ")": -1}.get(toks[j].string, 0)
                args.append(toks[j].string)
                if depth == 0:
                    break
                j += 1
            if "weights_only=True" not in "".join(args):
                found.append(t.line.strip())
    return found


def test_the_scanner_finds_what_it_should() -> None:
    bad = [
        "import pickle",
        "from pickle import loads",
        "import dill as d",
        "x = torch.load(path)",
        "x = torch.load(path, weights_only=False)",
        "x = torch.load(\n  path,\n  map_location='cpu')",
        "np.load(f, allow_pickle=True)",
        "from torch import load",
    ]
    for src in bad:
        assert pickle_uses(src + "\n"), src
    good = [
        "x = torch.load(path, weights_only=True)",
        "x = torch.load(path, map_location='cpu', weights_only=True)",
        "msg = 'a pickle file is refused'  # never pickle",
        "pickles = []",
        "np.load(f, allow_pickle=False)",
    ]
    for src in good:
        assert not pickle_uses(src + "\n"), src


def test_no_python_file_unpickles() -> None:
    paths = [ROOT / entry for entry in SCANNED]
    files = [f for p in paths for f in (sorted(p.rglob("*.py")) if p.is_dir() else [p]) if f.is_file()]
    assert ROOT / "vae_hub" / "model.py" in files and Path(__file__) in files
    offenders = {str(p.relative_to(ROOT)): uses for p in files if (uses := pickle_uses(p.read_text(encoding="utf-8")))}
    assert not offenders, f"pickle in the code base: {offenders}"

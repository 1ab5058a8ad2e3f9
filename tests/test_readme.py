"""The README's Python snippets run as written, in order, from the checkout, on the real MNIST."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_readme_snippets_run_as_written(mnist_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippets = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(snippets) >= 2
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("VAE_HUB_DATA", str(mnist_root))
    names: dict = {}
    for i, code in enumerate(snippets):
        exec(compile(code, f"README.md snippet {i + 1}", "exec"), names)
    assert names["recon"].shape == (8, 1, 28, 28) and names["samples"].shape == (16, 1, 28, 28)
    assert names["mu"].shape == (8, 2) and names["images"].dtype == torch.uint8
    # uint8 input is scaled: the reconstructions resemble the digits (correlation, not 255× saturation)
    x, r = names["images"][:8].float().flatten(1) / 255, names["recon"].flatten(1)
    x, r = x - x.mean(1, keepdim=True), r - r.mean(1, keepdim=True)
    assert ((x * r).sum(1) / (x.norm(dim=1) * r.norm(dim=1))).mean() > 0.6
    assert len(names["history"]) == 2 and (ROOT / "runs" / "grid.png").is_file()

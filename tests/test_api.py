"""The public API: every exported name exists and is listed in docs/api.md under its package."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

PACKAGES = (
    "comparison",
    "data",
    "embedding",
    "lens",
    "models",
    "pipeline",
    "report",
    "temporal",
    "training",
)
API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _documented() -> dict[str, set[str]]:
    """Names listed (``- `name` ...``) under each ``## `phenolapse.PACKAGE` `` heading."""
    out: dict[str, set[str]] = {}
    package = None
    for line in API_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## `phenolapse\.(\w+)`", line)
        if heading:
            package = heading.group(1)
            out[package] = set()
        elif package is not None and (item := re.match(r"- `(\w+)`", line)):
            out[package].add(item.group(1))
    return out


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_exists_and_is_documented(package: str) -> None:
    module = importlib.import_module(f"phenolapse.{package}")
    exported = list(module.__all__)
    assert exported, f"phenolapse.{package} exports nothing"
    assert len(set(exported)) == len(exported)
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"phenolapse.{package}.__all__ names that do not exist: {missing}"
    listed = _documented().get(package, set())
    assert sorted(set(exported) - listed) == [], f"add them to docs/api.md (phenolapse.{package})"
    assert sorted(listed - set(exported)) == [], (
        f"docs/api.md lists names phenolapse.{package} lacks"
    )


def test_internal_helpers_are_not_exported() -> None:
    import phenolapse.lens

    assert "lens_losses" not in phenolapse.lens.__all__
    assert "train_head" not in phenolapse.lens.__all__


def test_packages_import_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, phenolapse.lens, phenolapse.models, phenolapse.pipeline, phenolapse.report; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

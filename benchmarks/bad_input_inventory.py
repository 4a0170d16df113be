"""Per-command inventory of the bad-input test cases (tests marked ``bad_input(command)``).

Collects the test suite without running it, counts every collected case (each parametrized case
separately) by the command named in its ``bad_input`` marker, and prints a table: command, number
of cases. The last printed line is one JSON object ``{command: count}``. Slow and GPU cases are
counted too; pass ``--default-only`` to count only the default test run's cases.

Usage: ``python benchmarks/bad_input_inventory.py [--default-only] [PATHS ...]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("ingest", "validate", "simulate", "train", "embed", "temporal", "lens", "compare",
            "run", "demo", "config init", "config check", "growth")  # fmt: skip


class InventoryPlugin:
    """Pytest plugin that records the ``bad_input`` command of every collected item."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.unnamed: list[str] = []

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        """Count the collected items by the command of their ``bad_input`` marker."""
        for item in items:
            marker = item.get_closest_marker("bad_input")
            if marker is None:
                continue
            if not marker.args:
                self.unnamed.append(item.nodeid)
                continue
            self.counts[str(marker.args[0])] += 1


def inventory(paths: list[str], *, default_only: bool = False) -> tuple[dict[str, int], list[str]]:
    """Collect ``paths`` and return ``({command: cases}, nodeids of markers without a command)``."""
    plugin = InventoryPlugin()
    marks = "bad_input and not slow and not gpu" if default_only else "bad_input"
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", *paths, "-m", marks]
    code = pytest.main(args, plugins=[plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SystemExit(f"test collection failed (pytest exit code {int(code)})")
    counts = {c: plugin.counts.get(c, 0) for c in COMMANDS}
    counts.update({c: n for c, n in sorted(plugin.counts.items()) if c not in counts})
    return counts, plugin.unnamed


def main(argv: list[str] | None = None) -> int:
    """Print the inventory table and, last, the JSON object of counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(REPO_ROOT / "tests")])
    parser.add_argument(
        "--default-only", action="store_true", help="Count only cases of the default test run."
    )
    opts = parser.parse_args(argv)
    counts, unnamed = inventory(opts.paths, default_only=opts.default_only)
    width = max(len(c) for c in counts)
    print()
    print(f"{'command':<{width}}  cases")
    print(f"{'-' * width}  -----")
    for command, n in counts.items():
        print(f"{command:<{width}}  {n:5d}")
    print(f"{'total':<{width}}  {sum(counts.values()):5d}")
    for nodeid in unnamed:
        print(f"warning: {nodeid}: bad_input marker without a command", file=sys.stderr)
    print(json.dumps(counts))
    return 1 if unnamed else 0


if __name__ == "__main__":
    raise SystemExit(main())

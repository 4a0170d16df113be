"""Size of ``report.html`` per condition as screens grow: the demo's screen against larger ones.

Runs ``phenolapse run`` on simulated presets (``tiny``, the demo's screen, first: the baseline of
this run) with a quick configuration (random ConvAE weights, no training, lens or comparison:
those add a fixed number of figures, not one per condition), then measures ``report.html`` and
the per-drug pages in ``report/``. A condition is a cell line x drug x concentration. Printed per
preset: conditions, bytes of ``report.html``, bytes of the pages, bytes of the PNG figures the
report shows (as base64, what embedding them whole would cost), bytes of ``report.html`` per
condition and its ratio to the baseline's; a ratio below 1 means the report grows slower than the
number of conditions. The last line is one JSON object. Existing output folders (e.g. of
``phenolapse demo``) can be measured instead with ``--measure``.

Usage: ``python benchmarks/report_size.py [--presets tiny small] [--work DIR] [--measure OUT ...]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def conditions(out: Path) -> int:
    """Treatment conditions (cell line x drug x concentration) of a run's annotations."""
    ann = pd.read_csv(out / "temporal" / "annotations.csv")
    if "role" in ann.columns:
        ann = ann[ann["role"] == "treatment"]
    return len(ann.drop_duplicates(["cell_line", "drug", "concentration_um"]))


def measure(out: Path) -> dict[str, Any]:
    """Bytes of the report, of its pages and of its figures at full size, and the conditions."""
    pages = sorted((out / "report").glob("*.html")) if (out / "report").is_dir() else []
    figures = [p for d in ("train", "temporal", "lens", "compare") for p in (out / d).rglob("*.png")]
    n = conditions(out)
    main = (out / "report.html").stat().st_size
    return {
        "conditions": n,
        "report_bytes": main,
        "pages": len(pages),
        "pages_bytes": sum(p.stat().st_size for p in pages),
        "full_figures_b64_bytes": sum(4 * ((p.stat().st_size + 2) // 3) for p in figures),
        "bytes_per_condition": main / max(n, 1),
    }


def run_preset(preset: str, work: Path) -> Path:
    """Simulate ``preset`` (seed 0) and run the quick pipeline on it; returns the output folder."""
    import torch
    import yaml
    from typer.testing import CliRunner

    from phenolapse.cli import app
    from phenolapse.data.simulator import simulate_screen
    from phenolapse.models.convae import ConvAE, save_convae

    root = work / preset
    screen_dir = root / "screen"
    if not screen_dir.exists():
        simulate_screen(screen_dir, preset=preset, seed=0, progress=False)
    weights = root / "convae.pt"
    if not weights.exists():
        torch.manual_seed(0)
        save_convae(ConvAE(), weights)
    out = root / "out"
    cfg = {
        "output_dir": str(out),
        "title": f"report size: {preset}",
        "screen": {"images_dir": str(screen_dir / "images"),
                   "platemap": str(screen_dir / "platemap.csv")},
        "preprocess": {"image_size": 16},
        "weights": str(weights),
        "stages": {"train": False, "lens": False, "compare": False},
        "embed": {"precision": "fp32", "batch_size": 64},
    }  # fmt: skip
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["run", str(path), "--no-progress"])
    if res.exit_code != 0:
        raise SystemExit(f"{preset}: phenolapse run failed:\n{res.output}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the size table and, last, the JSON object of measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--work", type=Path, default=None, help="Folder of the runs (reused).")
    parser.add_argument(
        "--measure", nargs="+", type=Path, default=None, help="Measure these output folders."
    )
    opts = parser.parse_args(argv)
    if opts.measure:
        outs = {str(p): p for p in opts.measure}
    else:
        work = opts.work or Path(tempfile.mkdtemp(prefix="report_size_"))
        outs = {preset: run_preset(preset, work) for preset in opts.presets}
    rows = {name: measure(out) for name, out in outs.items()}
    base = next(iter(rows.values()))["bytes_per_condition"]
    for r in rows.values():
        r["ratio_to_baseline"] = r["bytes_per_condition"] / base
    width = max(len(n) for n in rows)
    print(f"{'run':<{width}}  conditions  report.html  pages  pages bytes  full figures  "
          "bytes/condition  ratio")  # fmt: skip
    for name, r in rows.items():
        print(f"{name:<{width}}  {r['conditions']:10d}  {r['report_bytes']:11d}  {r['pages']:5d}  "
              f"{r['pages_bytes']:11d}  {r['full_figures_b64_bytes']:12d}  "
              f"{r['bytes_per_condition']:15.0f}  {r['ratio_to_baseline']:5.2f}")  # fmt: skip
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

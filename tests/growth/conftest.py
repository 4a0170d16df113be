"""Small synthetic growth inputs: an Incucyte export, its plate map, a long table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TIMES = [4.0 * i for i in range(13)]
DRUGS = {"tox": -0.03, "stat": 0.0}  # growth rate per hour at the top dose
CONCS = [0.01, 0.1, 1.0, 10.0]


def _rate(drug: str, conc: float) -> float:
    """Control grows 0.03 / h; the drug's rate is reached with a Hill curve around 0.3 uM."""
    frac = 1.0 / (1.0 + (0.3 / conc) ** 2)
    return 0.03 + (DRUGS[drug] - 0.03) * frac


def design() -> pd.DataFrame:
    """Plate map: 4 DMSO wells, 2 drugs x 4 concentrations x 2 wells, 2 empty wells."""
    rows = [
        {"well": f"B{i + 2}", "drug": "DMSO", "concentration_um": 0.0, "role": "negative_control"}
        for i in range(4)
    ]
    k = 0
    for drug in DRUGS:
        for conc in CONCS:
            for _ in range(2):
                rows.append(
                    {
                        "well": f"{'CD'[k // 8]}{k % 8 + 2}",
                        "drug": drug,
                        "concentration_um": conc,
                        "role": "treatment",
                    }
                )
                k += 1
    rows += [{"well": "E2", "drug": "", "concentration_um": np.nan, "role": "untreated"}]
    return pd.DataFrame(rows)


def values(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Confluence (%) and dead area (%) per well (rows) and time (columns)."""
    rng = np.random.default_rng(seed)
    pm = design()
    conf, dead = {}, {}
    for _, r in pm.iterrows():
        t = np.array(TIMES)
        rate = _rate(r["drug"], r["concentration_um"]) if r["role"] == "treatment" else 0.03
        c = 10.0 * np.exp(rate * t) * (1 + rng.normal(0, 0.01, t.size))
        kill = r["drug"] == "tox" and r["concentration_um"] >= 1.0
        d = 0.05 + (0.02 * t if kill else 0.0005 * t)
        conf[r["well"]], dead[r["well"]] = c, d
    return pd.DataFrame(conf, index=TIMES), pd.DataFrame(dead, index=TIMES)


def write_export(
    path: Path, table: pd.DataFrame, *, metric: str, decimal_comma: bool = False
) -> Path:
    """An Incucyte-style export: header block, Date Time, Elapsed, one column per well."""
    lines = [
        "Label: TOY_plate-1",
        f"Metric: {metric}",
        "Cell Type: TOY",
        "Passage: 1",
        "Notes: ",
        "",
        "\t".join(["Date Time", "Elapsed", *table.columns]),
    ]
    for t, row in table.iterrows():
        vals = [f"{v:.6f}" for v in row]
        if decimal_comma:
            vals = [v.replace(".", ",") for v in vals]
        lines.append("\t".join([f"01/01/2020 {int(t) % 24:02d}:00:00", f"{t:g}", *vals]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def toy_inputs(tmp_path: Path) -> dict[str, Path]:
    conf, dead = values()
    pm = design()
    pm_path = tmp_path / "platemap.csv"
    pm.to_csv(pm_path, index=False)
    return {
        "phase": write_export(
            tmp_path / "toy_phase.txt", conf, metric="Phase Object Confluence (Percent)"
        ),
        "red": write_export(
            tmp_path / "toy_red.txt", dead, metric="Red Object Area (Percent)", decimal_comma=True
        ),
        "platemap": pm_path,
    }

"""Simulated Incucyte drug screens with known ground truth (SPEC section 9).

:func:`simulate_screen` writes real image files with Incucyte-style names, a plate map, the ground
truth per (cell line, drug, concentration) and the true cell count and coverage of every image, so
the whole pipeline runs on a simulated screen exactly as on real data and can be scored against
the truth. Layout of the output folder (docs/formats.md, "Simulated screen")::

    OUT/images/<plate>/<CELL>_Phase_<WELL>_<FIELD>_<DD>d<HH>h<MM>m.png
    OUT/masks/<plate>/<same name>.png     pixels where the drug's signature was drawn (0/255)
    OUT/platemap.csv  OUT/truth.csv  OUT/images.csv  OUT/simulation.json

Presets: ``tiny`` (tests; seconds), ``small`` (3 cell lines, 8 drugs; about a minute) and
``paper`` (the reference design: 21 cell lines, 31 drugs x 5 concentrations x 4 replicates, two
plates per cell line, a frame every 2 h for 4 days; shrink it with ``scale``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from phenolapse.data.sim.config import EFFECT_CLASSES, SIGNATURES, SimulationConfig
from phenolapse.data.sim.design import CellLine, Condition, Design, make_design, truth_table
from phenolapse.data.sim.dynamics import simulate_field
from phenolapse.errors import ConfigError, PhenolapseError
from phenolapse.io_utils import FORMAT_VERSION, atomic_path, write_csv, write_json

__all__ = [
    "EFFECT_CLASSES",
    "SIGNATURES",
    "SimulatedScreen",
    "SimulationConfig",
    "SimulationOutputError",
    "load_truth",
    "read_simulation_config",
    "remove_screen",
    "screen_design",
    "simulate_screen",
]

MARKER = "simulation.json"
PLATEMAP_COLUMNS = ["plate", "well", "drug", "concentration_um", "role", "time_zero"]


class SimulationOutputError(PhenolapseError):
    """The output folder of a simulation cannot be used (not empty and not a simulation)."""


@dataclass(frozen=True)
class SimulatedScreen:
    """Paths of a simulated screen on disk."""

    root: Path
    images_dir: Path
    platemap_path: Path
    truth_path: Path
    images_csv_path: Path
    masks_dir: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str]) -> SimulatedScreen:
        """The paths of the simulated screen in folder ``root``."""
        r = Path(root)
        return cls(
            r, r / "images", r / "platemap.csv", r / "truth.csv", r / "images.csv", r / "masks"
        )


def screen_design(config: SimulationConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plate map and ground truth of ``config``'s screen, without rendering any image."""
    design = make_design(config)
    return design.platemap[PLATEMAP_COLUMNS].copy(), truth_table(design)


def load_truth(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``truth.csv`` of the simulated screen in ``root`` (or the CSV file itself).

    Raises
    ------
    SimulationOutputError
        When the file is missing or lacks the truth columns.
    """
    path = Path(root)
    if path.is_dir():
        path = path / "truth.csv"
    if not path.is_file():
        raise SimulationOutputError(
            f"{path}: no ground-truth table; is this the folder written by `phenolapse simulate`?"
        )
    df = pd.read_csv(path)
    required = {"cell_line", "drug", "concentration_um", "effect"}
    missing = required - set(df.columns)
    if missing:
        raise SimulationOutputError(f"{path}: missing columns {sorted(missing)}")
    bad = sorted(set(df["effect"]) - set(EFFECT_CLASSES))
    if bad:
        raise SimulationOutputError(
            f"{path}: unknown effect values {bad}; expected {EFFECT_CLASSES}"
        )
    if "morphology_only" in df.columns:
        df["morphology_only"] = df["morphology_only"].astype(bool)
    df["signature"] = df["signature"].fillna("none") if "signature" in df.columns else "none"
    return df


def _time_code(elapsed_h: float) -> str:
    minutes = round(elapsed_h * 60)
    return f"{minutes // 1440:02d}d{(minutes % 1440) // 60:02d}h{minutes % 60:02d}m"


def image_name(cell_line: str, well: str, field: int, elapsed_h: float, ext: str) -> str:
    """Incucyte-style file name of one frame, e.g. ``SIM01_Phase_B10_1_02d08h00m.png``."""
    return f"{cell_line}_Phase_{well}_{field}_{_time_code(elapsed_h)}.{ext}"


@dataclass(frozen=True)
class _WellJob:
    root: Path
    plate: str
    plate_index: int
    well: str
    line: CellLine
    cond: Condition
    cfg: SimulationConfig


def _write_image(img: np.ndarray, path: Path, fmt: str) -> None:
    if fmt == "png":
        Image.fromarray(img).save(path, compress_level=1)
    elif fmt == "jpg":
        Image.fromarray(img).save(path, quality=95)
    else:
        import tifffile

        tifffile.imwrite(path, img)


def _run_well(job: _WellJob) -> list[dict[str, Any]]:
    """Simulate every field of one well and write its frames; return one record per image."""
    cfg = job.cfg
    img_dir = job.root / "images" / job.plate
    mask_dir = job.root / "masks" / job.plate
    img_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    row = ord(job.well[0]) - ord("A")
    col = int(job.well[1:])
    records = []
    for field in range(1, cfg.n_fields + 1):
        seed = np.random.SeedSequence([cfg.seed, 2, job.plate_index, row, col, field])
        frames = simulate_field(
            job.line,
            job.cond,
            elapsed_h=cfg.elapsed_hours,
            time_zero_h=cfg.time_zero_h,
            initial_coverage=cfg.initial_coverage,
            size=cfg.image_size,
            seed=seed,
            cell_size=cfg.cell_size,
            noise_sd=cfg.noise_sd,
        )
        for fr in frames:
            name = image_name(job.line.name, job.well, field, fr.elapsed_h, cfg.image_format)
            mask_name = Path(name).with_suffix(".png").name
            _write_image(fr.image, img_dir / name, cfg.image_format)
            Image.fromarray((fr.signature * 255).astype(np.uint8)).save(
                mask_dir / mask_name, compress_level=1
            )
            records.append(
                {
                    "image_path": f"images/{job.plate}/{name}",
                    "plate": job.plate,
                    "well": job.well,
                    "field": field,
                    "time_h": round(fr.time_h, 4),
                    "n_cells": fr.n_cells,
                    "coverage": round(fr.coverage, 5),
                    "cell_line": job.line.name,
                    "drug": job.cond.drug,
                    "concentration_um": job.cond.concentration_um,
                    "role": job.cond.role,
                    "elapsed_h": fr.elapsed_h,
                    "mask_path": f"masks/{job.plate}/{mask_name}",
                    "signature_fraction": round(float(fr.signature.mean()), 5),
                }
            )
    return records


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SimulationOutputError(
            f"{out}: exists and is not a folder; choose another output path"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SimulationOutputError(
            f"{out}: folder is not empty and holds no earlier simulation ({MARKER} missing); "
            "choose an empty or new folder"
        )


def _n_workers(cfg: SimulationConfig, n_images: int) -> int:
    if cfg.workers:
        return cfg.workers
    if n_images < 2000:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _jobs(design: Design, cfg: SimulationConfig, root: Path) -> list[_WellJob]:
    lines = {line.name: line for line in design.cell_lines}
    plate_index = {p: i for i, p in enumerate(sorted(design.plates))}
    jobs = []
    pm = design.platemap
    for plate, well, drug, conc, cell_line in zip(
        pm["plate"],
        pm["well"],
        pm["drug"],
        pm["concentration_um"].astype(float),
        pm["cell_line"],
        strict=True,
    ):
        line = lines[str(cell_line)]
        cond = design.conditions[(line.name, str(drug), float(conc))]
        jobs.append(_WellJob(root, str(plate), plate_index[str(plate)], str(well), line, cond, cfg))
    return jobs


def simulate_screen(
    out_dir: str | os.PathLike[str],
    *,
    preset: str = "tiny",
    seed: int = 0,
    config: SimulationConfig | None = None,
    **overrides: Any,
) -> SimulatedScreen:
    """Simulate a screen and write it to ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder; must be new, empty, or an earlier simulation (which is replaced).
    preset
        ``tiny``, ``small`` or ``paper``; ignored when ``config`` is given.
    seed
        Seed of every random draw: the same seed writes the same screen.
    config
        A full configuration instead of ``preset``, ``seed`` and ``overrides``.
    **overrides
        Fields of :class:`SimulationConfig` to change in the preset (e.g. ``scale=0.1``).

    Returns
    -------
    SimulatedScreen
        The paths of what was written. The folder appears in one rename when everything is written.

    Raises
    ------
    ConfigError
        For an unknown preset or option or an invalid value.
    SimulationOutputError
        When ``out_dir`` is a file or a non-empty folder that holds no earlier simulation.
    """
    if config is not None:
        if overrides:
            raise ConfigError("pass either config or preset overrides, not both")
        cfg = config
    else:
        cfg = SimulationConfig.preset(preset, seed=seed, **overrides)
    out = Path(out_dir)
    _check_out_dir(out)
    design = make_design(cfg)
    truth = truth_table(design)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        jobs = _jobs(design, cfg, tmp)
        n_images = len(jobs) * cfg.n_fields * cfg.n_timepoints
        workers = _n_workers(cfg, n_images)
        records: list[dict[str, Any]] = []
        bar = tqdm(total=len(jobs), desc="simulating wells", unit="well", disable=not cfg.progress)
        try:
            if workers == 1:
                for job in jobs:
                    records += _run_well(job)
                    bar.update()
            else:
                ctx = mp.get_context("spawn")
                with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                    for recs in pool.map(_run_well, jobs, chunksize=4):
                        records += recs
                        bar.update()
        finally:
            bar.close()
        images = pd.DataFrame.from_records(records)
        images = images.sort_values(["plate", "well", "field", "time_h"]).reset_index(drop=True)
        write_csv(design.platemap[PLATEMAP_COLUMNS], tmp / "platemap.csv")
        write_csv(truth, tmp / "truth.csv")
        write_csv(images, tmp / "images.csv")
        write_json(
            {
                "format_version": FORMAT_VERSION,
                "generator": "phenolapse.data.simulator",
                "n_images": len(images),
                "config": cfg.model_dump(),
            },
            tmp / MARKER,
        )
    return SimulatedScreen.at(out)


def remove_screen(root: str | os.PathLike[str]) -> None:
    """Delete a simulated screen folder (refuses folders that are not a simulation)."""
    path = Path(root)
    if not (path / MARKER).is_file():
        raise SimulationOutputError(
            f"{path}: not a simulated screen ({MARKER} missing); not removed"
        )
    shutil.rmtree(path)


def read_simulation_config(root: str | os.PathLike[str]) -> SimulationConfig:
    """The configuration a simulated screen in ``root`` was written with."""
    path = Path(root) / MARKER
    if not path.is_file():
        raise SimulationOutputError(f"{path}: missing; {root} is not a simulated screen")
    meta = json.loads(path.read_text())
    return SimulationConfig(**meta["config"])

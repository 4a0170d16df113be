"""The design of a simulated screen: cell lines, drugs, dose effects, plate layout, ground truth.

Everything here is drawn from the seed before any image is rendered, so the ground truth of a
screen is known (and testable) without simulating it.

Dose response: the effect level of a drug at concentration ``c`` on a cell line is the Hill
function ``e = c**n / (c**n + EC50**n)`` quantised to three levels (0 below 0.2, 1 above 0.8,
0.5 between). Level 0 is ``no_effect``, level 1 shows the drug's class (``cytostatic``,
``cytotoxic`` or ``mixed``) and level 0.5 is a partial response, labelled ``mixed`` (growth in
between control and stasis, or stasis with little death). The top concentration is always at
level 1. A drug's morphological signature follows its own Hill curve with a three times lower
EC50, so morphology changes at doses below the growth effect; ``no_effect`` drugs are either inert
or morphology-only (signature without any growth effect). Drug potencies are redrawn (from the
same seed) until every effect class holds at least 10 % of the treatment rows, when the design has
room for that (at least 4 drugs and 40 treatment rows).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from phenolapse.data.sim.config import EFFECT_CLASSES, SIGNATURES, SimulationConfig
from phenolapse.errors import ConfigError
from phenolapse.vocabulary import (
    CYTOSTATIC,
    CYTOTOXIC,
    MIXED,
    NEGATIVE_CONTROL,
    NO_EFFECT,
    TREATMENT,
    UNTREATED,
)

ROWS = "ABCDEFGHIJKLMNOP"
N_COLUMNS = 24
HILL = 1.5
MIN_CLASS_FRACTION = 0.1
MAX_REDRAWS = 200
DMSO = "DMSO"
PBS = "PBS"


@dataclass(frozen=True)
class CellLine:
    """Appearance and growth of one simulated cell line (lengths in pixels at 256 px)."""

    name: str
    radius: float
    aspect: float
    irregularity: float
    thickness: float
    flatness: float
    texture: float
    growth_factor: float
    motility: float
    clonality: float


@dataclass(frozen=True)
class Drug:
    """A simulated drug: its class at full effect, potency, onset and morphological signature."""

    name: str
    drug_class: str
    morphology_only: bool
    log10_ec50: float
    onset_h: float
    death_rate: float
    signature: str
    signature_param: float
    signature_max: float
    plate_index: int


@dataclass(frozen=True)
class Condition:
    """The effect of one drug at one concentration on one cell line (controls included)."""

    cell_line: str
    plate: str
    drug: str
    concentration_um: float
    role: str
    drug_class: str
    effect: str
    effect_level: float
    hill_response: float
    ec50_um: float
    onset_h: float
    growth_rate: float
    growth_factor: float
    death_rate: float
    death_onset_h: float
    size_factor: float
    rounding: float
    signature: str
    signature_param: float
    signature_strength: float
    morphology_only: bool


@dataclass(frozen=True)
class Design:
    """A whole simulated screen before rendering."""

    cell_lines: list[CellLine]
    drugs: list[Drug]
    conditions: dict[tuple[str, str, float], Condition]
    platemap: pd.DataFrame
    plates: dict[str, str]


def _cell_lines(cfg: SimulationConfig, rng: np.random.Generator) -> list[CellLine]:
    lines = []
    for i in range(cfg.effective_n_cell_lines):
        lines.append(
            CellLine(
                name=f"SIM{i + 1:02d}",
                radius=float(rng.uniform(6.0, 10.5)),
                aspect=float(rng.uniform(1.05, 2.0)),
                irregularity=float(rng.uniform(0.08, 0.2)),
                thickness=float(rng.uniform(0.85, 1.1)),
                flatness=float(rng.uniform(0.12, 0.3)),
                texture=float(rng.uniform(0.15, 0.3)),
                growth_factor=float(rng.uniform(0.92, 1.08)),
                motility=float(rng.uniform(0.6, 1.6)),
                clonality=float(rng.uniform(0.5, 1.3)),
            )
        )
    return lines


def _drug_classes(n: int, no_effect_fraction: float, rng: np.random.Generator) -> list[str]:
    n_none = min(n, round(n * no_effect_fraction))
    if n >= 4:
        n_none = max(1, n_none)
    active = (CYTOTOXIC, CYTOSTATIC, MIXED)
    classes = [NO_EFFECT] * n_none + [active[i % 3] for i in range(n - n_none)]
    order = rng.permutation(n)
    return [classes[i] for i in order]


def _drugs(cfg: SimulationConfig, n_plates: int, rng: np.random.Generator) -> list[Drug]:
    n = cfg.effective_n_drugs
    classes = _drug_classes(n, cfg.no_effect_fraction, rng)
    conc = np.log10(cfg.concentrations_um)
    top, span = float(conc[-1]), float(conc[-1] - conc[0])
    t_end = (cfg.n_timepoints - 1) * cfg.time_step_h - cfg.time_zero_h
    n_none = classes.count(NO_EFFECT)
    morph_only_left = max(1, math.ceil(n_none / 2)) if n_none else 0
    drugs = []
    sig_i = int(rng.integers(len(SIGNATURES)))
    for i, cls in enumerate(classes):
        morph_only = False
        if cls == NO_EFFECT:
            morph_only = morph_only_left > 0
            morph_only_left -= 1
        has_sig = cls != NO_EFFECT or morph_only
        signature = "none"
        if has_sig:
            signature = SIGNATURES[sig_i % len(SIGNATURES)]
            sig_i += 1
        drugs.append(
            Drug(
                name=f"Drug{i + 1:02d}",
                drug_class=cls,
                morphology_only=morph_only,
                log10_ec50=top - float(rng.uniform(0.8, max(0.9, span + 0.1))),
                onset_h=float(rng.uniform(0.05, 0.25) * t_end),
                death_rate=float(rng.uniform(3.0, 5.0) / t_end),
                signature=signature,
                signature_param=float(rng.uniform(0.0, 1.0)) if has_sig else 0.0,
                signature_max=float(rng.uniform(0.75, 1.0)) if has_sig else 0.0,
                plate_index=i % n_plates,
            )
        )
    return drugs


def _hill(c: float, ec50: float) -> float:
    return float(c**HILL / (c**HILL + ec50**HILL))


def _condition(
    cfg: SimulationConfig,
    line: CellLine,
    drug: Drug,
    conc: float,
    plate: str,
    line_shift: float,
    base_rate: float,
) -> Condition:
    top = math.log10(max(cfg.concentrations_um))
    log_ec50 = min(drug.log10_ec50 + line_shift, top - 0.75)
    ec50 = 10.0**log_ec50
    e = _hill(conc, ec50)
    level = 0.0 if e < 0.2 else (1.0 if e > 0.8 else 0.5)
    cls = drug.drug_class
    if cls == NO_EFFECT:
        level = 0.0
    effect = NO_EFFECT if level == 0 else (cls if level == 1 else MIXED)
    onset = drug.onset_h * (1.0 + 0.5 * (1.0 - e))
    g, d, d_onset, size, rounding = 1.0, 0.0, onset, 1.0, 0.0
    if cls == CYTOSTATIC and level > 0:
        g = 1.0 - 0.97 * level
        size = 1.0 + 0.2 * level
    elif cls == CYTOTOXIC and level > 0:
        g = 1.0 - (1.0 if level == 1 else 0.6)
        d = drug.death_rate * (1.0 if level == 1 else 0.12)
        rounding = 0.8 * level
        size = 1.0 - 0.15 * level
    elif cls == MIXED and level > 0:
        g = 1.0 - (0.97 if level == 1 else 0.5)
        d = drug.death_rate * (0.3 if level == 1 else 0.08)
        t_end = (cfg.n_timepoints - 1) * cfg.time_step_h - cfg.time_zero_h
        d_onset = onset + 0.35 * max(t_end - onset, 0.0)
        size = 1.0 + 0.2 * level
        rounding = 0.3 * level
    sig_strength = 0.0
    if drug.signature != "none":
        sig_strength = drug.signature_max * _hill(conc, ec50 / 3.0)
    return Condition(
        cell_line=line.name,
        plate=plate,
        drug=drug.name,
        concentration_um=conc,
        role=TREATMENT,
        drug_class=cls,
        effect=effect,
        effect_level=level,
        hill_response=round(e, 4),
        ec50_um=ec50,
        onset_h=round(onset, 3),
        growth_rate=base_rate,
        growth_factor=round(g, 4),
        death_rate=round(d, 5),
        death_onset_h=round(d_onset, 3),
        size_factor=round(size, 4),
        rounding=round(rounding, 4),
        signature=drug.signature,
        signature_param=drug.signature_param,
        signature_strength=round(sig_strength, 4),
        morphology_only=bool(drug.morphology_only and sig_strength >= 0.3),
    )


def _control(line: CellLine, plate: str, name: str, base_rate: float) -> Condition:
    return Condition(
        cell_line=line.name,
        plate=plate,
        drug=name,
        concentration_um=0.0,
        role=NEGATIVE_CONTROL if name == DMSO else UNTREATED,
        drug_class=NO_EFFECT,
        effect=NO_EFFECT,
        effect_level=0.0,
        hill_response=0.0,
        ec50_um=float("nan"),
        onset_h=0.0,
        growth_rate=base_rate,
        growth_factor=1.0,
        death_rate=0.0,
        death_onset_h=0.0,
        size_factor=1.0,
        rounding=0.0,
        signature="none",
        signature_param=0.0,
        signature_strength=0.0,
        morphology_only=False,
    )


def control_growth_rate(cfg: SimulationConfig, line: CellLine) -> float:
    """Per-hour division rate of control wells: coverage reaches ``final_coverage`` at the end."""
    k = carrying_density()
    rho0 = -math.log(1.0 - cfg.initial_coverage)
    rho1 = min(-math.log(1.0 - cfg.final_coverage), 0.97 * k)
    rho0 = min(rho0, 0.9 * rho1)
    span = (cfg.n_timepoints - 1) * cfg.time_step_h
    rt = math.log((k / rho0 - 1.0) / (k / rho1 - 1.0))
    return 1.1 * rt / span * line.growth_factor


def carrying_density() -> float:
    """Carrying capacity in summed cell area per field area (coverage 1 - exp(-K) ~ 0.9)."""
    return 2.3


def _layout(n_wells: int, rng: np.random.Generator) -> list[str]:
    inner = [f"{r}{c}" for r in ROWS[1:-1] for c in range(2, N_COLUMNS)]
    pool = inner if n_wells <= len(inner) else [f"{r}{c}" for r in ROWS for c in range(1, 25)]
    idx = rng.choice(len(pool), size=n_wells, replace=False)
    return [pool[i] for i in idx]


def _conditions(
    cfg: SimulationConfig,
    lines: list[CellLine],
    drugs: list[Drug],
    shifts: dict[str, np.ndarray],
    n_plates: int,
) -> dict[tuple[str, str, float], Condition]:
    conditions: dict[tuple[str, str, float], Condition] = {}
    for line in lines:
        base_rate = control_growth_rate(cfg, line)
        for drug, shift in zip(drugs, shifts[line.name], strict=True):
            plate = f"{line.name}_P{drug.plate_index + 1}"
            for c in cfg.concentrations_um:
                cond = _condition(cfg, line, drug, c, plate, float(shift), base_rate)
                conditions[(line.name, drug.name, c)] = cond
        for name, n in ((DMSO, cfg.effective_n_dmso_wells), (PBS, cfg.effective_n_pbs_wells)):
            if n:
                conditions[(line.name, name, 0.0)] = _control(
                    line, f"{line.name}_P1", name, base_rate
                )
    return conditions


def _balanced(conditions: dict[tuple[str, str, float], Condition], cfg: SimulationConfig) -> bool:
    """Whether every effect class has at least ``MIN_CLASS_FRACTION`` of the treatment rows.

    Only demanded when the design has room for it (at least 4 drugs and 40 treatment rows).
    """
    effects = [c.effect for c in conditions.values() if c.role == TREATMENT]
    if cfg.effective_n_drugs < 4 or len(effects) < 40 or cfg.no_effect_fraction == 0:
        return True
    return all(effects.count(e) >= MIN_CLASS_FRACTION * len(effects) for e in EFFECT_CLASSES)


def make_design(cfg: SimulationConfig) -> Design:
    """Draw the cell lines, drugs, per-condition effects and plate layout of ``cfg``'s screen.

    Raises
    ------
    ConfigError
        When the wells of a plate do not fit a 384-well plate.
    """
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    n_drugs = cfg.effective_n_drugs
    n_conc = len(cfg.concentrations_um)
    per_drug = n_conc * cfg.n_replicates
    controls = cfg.effective_n_dmso_wells + cfg.effective_n_pbs_wells
    capacity = ROWS.__len__() * N_COLUMNS - controls
    if per_drug > capacity:
        raise ConfigError(
            f"one drug needs {per_drug} wells, more than a 384-well plate holds beside "
            f"{controls} control wells; use fewer concentrations or replicates"
        )
    min_plates = math.ceil(n_drugs / (capacity // per_drug))
    n_plates = cfg.plates_per_cell_line or min_plates
    if n_plates < min_plates:
        raise ConfigError(
            f"{n_drugs} drugs x {n_conc} concentrations x {cfg.n_replicates} replicates do not fit "
            f"{n_plates} plate(s) of 384 wells per cell line; "
            f"set plates_per_cell_line >= {min_plates}"
        )
    lines = _cell_lines(cfg, rng)
    for _ in range(MAX_REDRAWS):
        drugs = _drugs(cfg, n_plates, rng)
        shifts = {line.name: rng.normal(0.0, 0.3, size=len(drugs)) for line in lines}
        conditions = _conditions(cfg, lines, drugs, shifts, n_plates)
        if _balanced(conditions, cfg):
            break
    rows = []
    plates: dict[str, str] = {}
    for line in lines:
        for p in range(n_plates):
            plate = f"{line.name}_P{p + 1}"
            plates[plate] = line.name
            entries: list[tuple[str, float, str]] = []
            for drug in drugs:
                if drug.plate_index == p:
                    entries += [
                        (drug.name, c, TREATMENT)
                        for c in cfg.concentrations_um
                        for _ in range(cfg.n_replicates)
                    ]
            for name, n in ((DMSO, cfg.effective_n_dmso_wells), (PBS, cfg.effective_n_pbs_wells)):
                role = NEGATIVE_CONTROL if name == DMSO else UNTREATED
                entries += [(name, 0.0, role)] * n
            wells = _layout(len(entries), rng)
            for well, (drug_name, c, role) in zip(wells, entries, strict=True):
                rows.append(
                    {
                        "plate": plate,
                        "well": well,
                        "drug": drug_name,
                        "concentration_um": c,
                        "role": role,
                        "time_zero": cfg.time_zero_h,
                        "cell_line": line.name,
                    }
                )
    platemap = pd.DataFrame(rows)
    platemap["_r"] = platemap["well"].str[0].map(ROWS.index)
    platemap["_c"] = platemap["well"].str[1:].astype(int)
    platemap = platemap.sort_values(["plate", "_r", "_c"]).drop(columns=["_r", "_c"])
    return Design(lines, drugs, conditions, platemap.reset_index(drop=True), plates)


def truth_table(design: Design) -> pd.DataFrame:
    """Ground truth: one row per (cell line, drug, concentration), controls included."""
    df = pd.DataFrame([asdict(c) for c in design.conditions.values()])
    counts = design.platemap.groupby(["cell_line", "drug", "concentration_um"]).size()
    df["n_wells"] = [
        int(counts.get((r.cell_line, r.drug, r.concentration_um), 0)) for r in df.itertuples()
    ]
    first = ["cell_line", "drug", "concentration_um", "effect"]
    df = df[first + [c for c in df.columns if c not in first]]
    return df.sort_values(["cell_line", "role", "drug", "concentration_um"]).reset_index(drop=True)

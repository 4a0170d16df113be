"""Automatic effect annotation of every (cell line, drug, concentration) (SPEC 7.6).

Each unit gets one of ``no_effect``, ``cytostatic``, ``cytotoxic``, ``mixed`` from documented rules
over two readouts. Thresholds are fields of :class:`~phenolapse.temporal.config.AnnotationConfig`
(names in brackets).

**Cluster shape (image features).** The DTW centroid of the unit's cluster (min-max scaled
distance-to-control series) is described by its late level (mean of the last fifth), its peak and
the fall from peak to late level, and mapped to an effect:

- ``rise_stay`` - late level >= [late_level] and fall < [peak_fall]: distance rises to its maximum
  and stays -> ``cytotoxic``;
- ``rise_fall`` - fall >= [peak_fall] with the peak before the last fifth: distance rises, peaks
  and falls back -> ``cytostatic``;
- ``low`` - peak < 1 - [late_level] : low and flat -> ``no_effect``;
- ``intermediate`` - anything else -> ``mixed``.

The user may replace this mapping (``cluster_effects``: cluster id -> effect).

**Image features alone.** Profiles are first normalised against each plate's negative controls
(robust z-scores), so a distance counts every feature in units of the control's own variation.
Min-max scaling removes absolute level, so the size of the distance decides whether the features
show an effect at all, in units of the control's own spread: a unit shows an effect when its
smoothed distance peaks above [distance_effect] (``max_relative_distance``) or stays above
[sustained_effect] on average over the second half of the time course (``late_relative_distance``:
a moderate change that persists). ``onset_h`` is the first time the distance leaves the control
band (above 1 at that and the next time point).

*How* the unit acts is read from where it went against the control's own trajectory in feature
space (:mod:`phenolapse.temporal.trajectory`): ``progress_end`` is how far along the control's
path the unit has come by the end, in units of the control's own progress (0 at drug addition,
about 1 for the control at the end); ``progress_fall`` its fall from the highest progress it
reached. Rules for units that show an effect, first match wins (``feature_rule``):

- T1. ``progress_end`` < [progress_lost], or ``progress_fall`` >= [progress_collapse] ending at
  or below [progress_stalled]: it moved back along the path past where it started, or lost all it
  had gained: cells were lost -> ``cytotoxic``;
- T2. ``progress_fall`` >= [progress_fall]: it advanced, then lost ground -> ``mixed``;
- T3. ``progress_end`` > [progress_beyond]: it went further along the path than the control
  itself; drugs do not make cells outgrow their control, so this is cells rounding up or debris
  that resemble a denser field -> ``mixed``;
- T4. ``progress_end`` >= [progress_like_control]: it advanced like the control, so its distance
  is off the path, a change of shape only -> ``no_effect`` (flagged ``morphology_change``);
- T5. ``progress_end`` <= [progress_stalled]: it stalled where it was at drug addition ->
  ``cytostatic``;
- T6. otherwise (it advanced, more slowly than the control) -> ``mixed``.

A unit without a path readout (a control trajectory that does not move) takes its cluster's
effect, and so does every unit when the user maps clusters to effects. ``feature_effect`` is the
rule's effect for units that show an effect, else ``no_effect`` (``F0:inside_control_band``).

**Growth (confluence from the images or an Incucyte export; GR after Hafner et al. 2016).**
Readouts per unit (:func:`phenolapse.temporal.growth.gr_summary`): ``end_ratio`` (end / start
confluence), ``fall_ratio`` (end / maximum confluence after drug addition), ``gr_end`` (GR at the
end) and ``gr_late`` (GR over the second half of the time course). Rules, first match wins:

1. ``end_ratio`` < [full_kill_fraction]: cell mass fell below its start -> ``cytotoxic``;
2. ``fall_ratio`` < [fall_fraction] or ``gr_end`` < [gr_cytotoxic]: partial death -> ``mixed``;
3. ``gr_end`` >= [gr_no_effect]: growth like the control -> ``no_effect``;
4. ``gr_end`` >= [gr_borderline]: slight inhibition -> decided by the image features (rule 4f);
   ``mixed`` when growth is used alone;
5. ``gr_late`` <= [gr_stasis]: growth has stopped with cells alive -> ``cytostatic``;
6. otherwise (growth slowed but not stopped) -> ``mixed``.

**Combination** (both readouts): the growth rules decide, with

- 4f. in the borderline band of rule 4: ``mixed`` when the features show an effect or lag behind
  the control along its path (``progress_end`` < [progress_like_control]), else ``no_effect``;
- 5f. growth stopped by rule 5 while the features show the well advancing along the control's
  path (``progress_end`` >= [progress_like_control]): the readouts disagree -> ``mixed``;
- with a user cluster -> effect mapping, units whose features show an effect take the mapped
  effect of their cluster (the user's reading of the clusters overrides the growth rules);
- ``morphology_change = True`` for every unit called ``no_effect`` whose features show an effect
  (a drug that changes morphology without changing growth);
- ``feature_support`` says whether the features agree that something happened.

Without growth (``--no-growth``, or a unit without growth data): the feature effect. Without
features: the growth rules (rule 4 -> ``mixed``).

**Consensus over cell lines**: per (drug, concentration) the most frequent effect; a tie between
effects gives ``mixed``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from phenolapse.errors import ConfigError
from phenolapse.temporal.config import AnnotationConfig
from phenolapse.vocabulary import CYTOSTATIC, CYTOTOXIC, EFFECTS, MIXED, NO_EFFECT

SHAPE_EFFECT = {
    "rise_stay": CYTOTOXIC,
    "rise_fall": CYTOSTATIC,
    "low": NO_EFFECT,
    "intermediate": MIXED,
}


def centroid_shape(
    centroid: np.ndarray, *, config: AnnotationConfig | None = None
) -> dict[str, float | str]:
    """Describe a scaled centroid: ``late``, ``peak``, ``peak_position``, ``fall``, ``shape``."""
    cfg = config or AnnotationConfig()
    c = np.asarray(centroid, dtype=np.float64).ravel()
    if c.size < 2 or not np.isfinite(c).all():
        raise ValueError("a centroid needs at least 2 finite points")
    n_late = max(1, int(np.ceil(c.size / 5)))
    late = float(c[-n_late:].mean())
    peak_i = int(np.argmax(c))
    peak = float(c[peak_i])
    fall = peak - late
    if late >= cfg.late_level and fall < cfg.peak_fall:
        shape = "rise_stay"
    elif fall >= cfg.peak_fall and peak_i < c.size - n_late:
        shape = "rise_fall"
    elif peak < 1.0 - cfg.late_level:
        shape = "low"
    else:
        shape = "intermediate"
    return {
        "late": late,
        "peak": peak,
        "peak_position": peak_i / (c.size - 1),
        "fall": fall,
        "shape": shape,
    }


def cluster_effects_from_centroids(
    centroids: np.ndarray, *, config: AnnotationConfig | None = None
) -> pd.DataFrame:
    """One row per cluster: its shape descriptors and the effect the shape maps to."""
    rows = []
    for i, c in enumerate(np.asarray(centroids, dtype=np.float64)):
        d = centroid_shape(c, config=config)
        rows.append({"cluster": i, **d, "effect": SHAPE_EFFECT[str(d["shape"])]})
    return pd.DataFrame(rows)


def read_cluster_mapping(path: str | Path) -> dict[int, str]:
    """Read a user cluster -> effect mapping from YAML (``{0: cytotoxic, ...}``) or CSV
    (columns ``cluster, effect``)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            df = pd.read_csv(path)
            if not {"cluster", "effect"} <= set(df.columns):
                raise ConfigError(f"{path}: a cluster mapping CSV needs columns cluster, effect")
            raw = dict(zip(df["cluster"], df["effect"], strict=True))
        else:
            raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path}: cannot read cluster mapping ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a cluster mapping must map cluster ids to effects")
    return validate_mapping(raw, source=str(path))


def validate_mapping(raw: Mapping[Any, Any], *, source: str = "cluster mapping") -> dict[int, str]:
    """Check a cluster -> effect mapping (integer ids, known effects) and normalise it."""
    out: dict[int, str] = {}
    for k, v in raw.items():
        try:
            key = int(str(k))
        except ValueError as exc:
            raise ConfigError(f"{source}: cluster id {k!r} is not an integer") from exc
        if str(v) not in EFFECTS:
            raise ConfigError(f"{source}: cluster {key} maps to {v!r}; use one of {list(EFFECTS)}")
        out[key] = str(v)
    return out


def _value(row: Any, name: str) -> float:
    """``row[name]`` (mapping) or ``row.name`` (named tuple) as a float; NaN when absent."""
    value = getattr(row, name, np.nan) if not isinstance(row, Mapping) else row.get(name, np.nan)
    return float(value) if value is not None else float("nan")


def growth_effect(row: Any, *, config: AnnotationConfig | None = None) -> tuple[str, str]:
    """Effect from the growth readouts of one unit (growth rules 1-6); returns (effect, rule)."""
    cfg = config or AnnotationConfig()

    gr_end, gr_late = _value(row, "gr_end"), _value(row, "gr_late")
    fall_ratio, end_ratio = _value(row, "fall_ratio"), _value(row, "end_ratio")
    if np.isfinite(end_ratio) and end_ratio < cfg.full_kill_fraction:
        return CYTOTOXIC, "1:died"
    if (np.isfinite(fall_ratio) and fall_ratio < cfg.fall_fraction) or (
        np.isfinite(gr_end) and gr_end < cfg.gr_cytotoxic
    ):
        return MIXED, "2:partial_death"
    if not np.isfinite(gr_end):
        return NO_EFFECT, "undefined"
    if gr_end >= cfg.gr_no_effect:
        return NO_EFFECT, "3:like_control"
    if gr_end >= cfg.gr_borderline:
        return MIXED, "4:borderline"
    if np.isfinite(gr_late) and gr_late <= cfg.gr_stasis:
        return CYTOSTATIC, "5:stopped"
    return MIXED, "6:slowed"


def trajectory_effect(row: Any, *, config: AnnotationConfig | None = None) -> tuple[str, str]:
    """Effect from where a unit went against the control's path (rules T1-T6).

    Returns ``(effect, rule)``; ``("", "undefined")`` when the unit has no progress readout.
    """
    cfg = config or AnnotationConfig()
    end, fall = _value(row, "progress_end"), _value(row, "progress_fall")
    if not np.isfinite(end):
        return "", "undefined"
    fall = fall if np.isfinite(fall) else 0.0
    if end < cfg.progress_lost or (fall >= cfg.progress_collapse and end <= cfg.progress_stalled):
        return CYTOTOXIC, "T1:lost"
    if fall >= cfg.progress_fall:
        return MIXED, "T2:advanced_then_lost"
    if end > cfg.progress_beyond:
        return MIXED, "T3:beyond_control"
    if end >= cfg.progress_like_control:
        return NO_EFFECT, "T4:shape_only"
    if end <= cfg.progress_stalled:
        return CYTOSTATIC, "T5:stalled"
    return MIXED, "T6:slowed"


def annotate(
    units: pd.DataFrame,
    *,
    config: AnnotationConfig | None = None,
    cluster_effects: Mapping[int, str] | None = None,
    use_features: bool = True,
    use_growth: bool = True,
) -> pd.DataFrame:
    """Label every unit with an effect (rules in the module docstring).

    Parameters
    ----------
    units
        One row per (cell line, plate, drug, concentration) with ``cluster``, ``cluster_effect``
        (from the centroid shape), ``max_relative_distance`` and optionally
        ``late_relative_distance`` when features are used, and
        ``gr_end``, ``gr_late``, ``fall_ratio``, ``end_ratio`` when growth is used.
    config
        Thresholds.
    cluster_effects
        User mapping cluster id -> effect replacing the shape-based ``cluster_effect``.
    use_features, use_growth
        Which readouts to use (at least one).

    Returns
    -------
    DataFrame
        ``units`` plus ``feature_effect``, ``growth_effect``, ``growth_rule``, ``effect``,
        ``morphology_change``, ``feature_support``.
    """
    cfg = config or AnnotationConfig()
    if not (use_features or use_growth):
        raise ConfigError("annotation needs the image features, the growth readout or both")
    out = units.copy()
    shows = np.zeros(len(out), dtype=bool)
    if use_features:
        for col in ("cluster", "max_relative_distance"):
            if col not in out.columns:
                raise ConfigError(f"feature-based annotation needs column {col!r}")
        if cluster_effects is not None:
            mapping = validate_mapping({int(k): str(v) for k, v in cluster_effects.items()})
            missing = sorted(set(out["cluster"].astype(int)) - set(mapping))
            if missing:
                raise ConfigError(
                    f"the cluster mapping lacks cluster(s) {missing}; map every cluster to an "
                    "effect"
                )
            out["cluster_effect"] = out["cluster"].astype(int).map(mapping)
        elif "cluster_effect" not in out.columns:
            raise ConfigError(
                "feature-based annotation needs 'cluster_effect' or a cluster mapping"
            )
        rel = out["max_relative_distance"].to_numpy(dtype=np.float64)
        above = np.where(np.isfinite(rel), rel > cfg.distance_effect, True)
        if "late_relative_distance" in out.columns:
            late = out["late_relative_distance"].to_numpy(dtype=np.float64)
            above |= np.isfinite(late) & (late > cfg.sustained_effect)
        if "progress_end" in out.columns and cluster_effects is None:
            calls = [trajectory_effect(r, config=cfg) for r in out.itertuples(index=False)]
            path_effect = np.array([c[0] for c in calls], dtype=object)
            rule = np.array([c[1] for c in calls], dtype=object)
            undefined = rule == "undefined"
            path_effect[undefined] = out["cluster_effect"].to_numpy()[undefined]
            rule[undefined] = "cluster_shape"
        else:
            path_effect = out["cluster_effect"].to_numpy()
            rule = np.full(len(out), "cluster_shape", dtype=object)
        out["feature_effect"] = np.where(above, path_effect, NO_EFFECT)
        out["feature_rule"] = np.where(above, rule, "F0:inside_control_band")
        shows = above
    else:
        out["feature_effect"] = ""
        out["feature_rule"] = ""
    if use_growth:
        for col in ("gr_end", "gr_late", "fall_ratio", "end_ratio"):
            if col not in out.columns:
                raise ConfigError(f"growth-based annotation needs column {col!r}")
        calls = [growth_effect(r, config=cfg) for r in out.itertuples(index=False)]
        out["growth_effect"] = [c[0] for c in calls]
        out["growth_rule"] = [c[1] for c in calls]
    else:
        out["growth_effect"] = ""
        out["growth_rule"] = ""
    effects = []
    for i, r in enumerate(out.itertuples(index=False)):
        g, f = str(r.growth_effect), str(r.feature_effect)
        no_growth = not use_growth or (use_features and r.growth_rule == "undefined")
        user_mapped = cluster_effects is not None and bool(shows[i])
        progress = _value(r, "progress_end")
        advancing = bool(shows[i]) and progress >= cfg.progress_like_control
        if no_growth or user_mapped:
            effects.append(f)
        elif use_features and r.growth_rule == "5:stopped" and advancing:
            effects.append(MIXED)
        elif not use_features or r.growth_rule != "4:borderline":
            effects.append(g)
        else:
            lagging = progress < cfg.progress_like_control
            effects.append(MIXED if shows[i] or lagging else NO_EFFECT)
    out["effect"] = effects
    out["morphology_change"] = shows & (out["effect"] == NO_EFFECT).to_numpy()
    out["feature_support"] = shows if use_features else np.nan
    return out


def consensus(annotations: pd.DataFrame, *, effect: str = "effect") -> pd.DataFrame:
    """Consensus effect per (drug, concentration) over cell lines: majority, ties -> ``mixed``.

    Returns ``drug, concentration_um, effect, n_cell_lines, agreement`` (share of cell lines
    agreeing with the consensus) and one ``n_<effect>`` count column per effect.
    """
    rows = []
    for (drug, conc), grp in annotations.groupby(
        ["drug", "concentration_um"], sort=True, dropna=False
    ):
        counts = Counter(grp[effect].astype(str))
        top = counts.most_common()
        best = top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else MIXED
        rows.append(
            {
                "drug": drug,
                "concentration_um": conc,
                "effect": best,
                "n_cell_lines": int(grp["cell_line"].nunique()),
                "agreement": counts.get(best, 0) / len(grp),
                **{f"n_{e}": counts.get(e, 0) for e in EFFECTS},
            }
        )
    return pd.DataFrame(rows)


def agreement_scores(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Accuracy and macro-F1 (over the four effects present in truth or prediction)."""
    from sklearn.metrics import accuracy_score, f1_score

    p = predicted.astype(str).to_numpy()
    t = truth.astype(str).to_numpy()
    labels = sorted(set(t) | set(p))
    return {
        "accuracy": float(accuracy_score(t, p)),
        "macro_f1": float(f1_score(t, p, labels=labels, average="macro", zero_division=0)),
        "n": float(len(t)),
    }


def rules_markdown(
    config: AnnotationConfig | None = None, *, cluster_table: pd.DataFrame | None = None
) -> str:
    """The annotation rules as Markdown, with the thresholds used (written beside the tables)."""
    cfg = config or AnnotationConfig()
    doc = (__doc__ or "").strip()
    lines = [
        "# Effect annotation rules",
        "",
        doc,
        "",
        "## Thresholds used",
        "",
        *[f"- `{k}` = {v}" for k, v in cfg.model_dump().items()],
    ]
    if cluster_table is not None and not cluster_table.empty:
        lines += [
            "",
            "## Clusters",
            "",
            "| cluster | shape | late | peak | fall | effect |",
            "|---|---|---|---|---|---|",
        ]
        for r in cluster_table.itertuples(index=False):
            lines.append(
                f"| {r.cluster} | {r.shape} | {r.late:.2f} | {r.peak:.2f} | {r.fall:.2f} "
                f"| {r.effect} |"
            )
    return "\n".join(lines) + "\n"

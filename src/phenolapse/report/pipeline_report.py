"""The report of a whole run: one HTML file with every stage's tables and figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from phenolapse.artefacts import read_manifest
from phenolapse.report.growth_figures import POTENCY_DIR
from phenolapse.report.html import Figure, Links, Section, Table, Text, write_html

SECTION_TITLES = (
    "Screen overview",
    "Feature extractor training",
    "Temporal drug effects",
    "Growth-rate inhibition",
    "Morphology: drug classification and the lens",
    "Feature extractors compared",
    "Methods",
)
_MAX_FIGURES = 24
PAGES_DIR = "report"


def _caption(path: Path) -> str:
    return path.stem.replace("_", " ")


def _figures(folder: Path, *, limit: int = _MAX_FIGURES, recursive: bool = False) -> list[Figure]:
    if not folder.is_dir():
        return []
    files = sorted(folder.rglob("*.png") if recursive else folder.glob("*.png"))
    return [Figure(p, _caption(p)) for p in files[:limit]]


def _csv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None


def drug_pages(
    fig_dir: Path, pages_dir: Path, *, title: str
) -> tuple[list[Figure | Table | Text | Links], set[str]]:
    """Write one page per drug (its curves and image strips) into ``pages_dir``.

    Reads ``figure_names.csv`` of the temporal figures. Returns the blocks that link the pages
    from the main report (full drug names as link text) and the figure files the pages show.
    """
    from phenolapse.io_utils import atomic_path
    from phenolapse.report.slugs import unique_slugs
    from phenolapse.report.temporal_figures import FIGURE_NAMES

    names = _csv(fig_dir / FIGURE_NAMES)
    if names is None or not {"file", "figure", "cell_line", "drug"} <= set(names.columns):
        return [], set()
    names = names.astype(str)
    what = {"curves": "distance to control and confluence", "strip": "images over time"}
    slugs = unique_slugs(names["drug"])
    links: list[tuple[str, str]] = []
    with atomic_path(pages_dir) as tmp:
        tmp.mkdir(parents=True)
        for drug, rows in names.groupby("drug", sort=True):
            figs: list[Figure | Table | Text | Links] = [
                Figure(fig_dir / str(file), f"{drug}, {line}: {what.get(str(kind), str(kind))}")
                for file, kind, line in zip(
                    rows["file"], rows["figure"], rows["cell_line"], strict=True
                )
            ]
            page = f"{slugs[str(drug)]}.html"
            write_html(
                [Section(str(drug), figs)],
                tmp / page,
                title=f"{title}: {drug}",
                back=("../report.html", "back to the report"),
            )
            links.append((f"{pages_dir.name}/{page}", str(drug)))
    blocks: list[Figure | Table | Text | Links] = [
        Links(links, f"Per drug ({len(links)} pages): distance to control, confluence, images")
    ]
    return blocks, set(names["file"])


def potency_blocks(tdir: Path, *, limit: int = 6) -> list[Figure | Table | Text]:
    """The potency-over-time figures and a summary of ``gr_metrics.csv`` of a temporal folder.

    At most ``limit`` figures (one per cell line and plate) are embedded, keeping the report
    small; the rest are named.
    """
    metrics = _csv(tdir / "gr_metrics.csv")
    figs = _figures(tdir / POTENCY_DIR, limit=10**6)
    if metrics is None or metrics.empty:
        return []
    blocks: list[Figure | Table | Text] = [
        Text(
            "Potency over time: at every time point GR against concentration is fitted with the "
            "GR sigmoid; GR50 is where the fit crosses 0.5 (a gap: not reached), GRmax the "
            "lowest GR at the two highest concentrations (temporal/gr_metrics.csv)."
        )
    ]
    for fig in figs:
        fig.caption = (
            f"GR50 and GRmax against time per drug: {fig.path.stem.removeprefix('potency_')}"
        )
    blocks += figs[:limit]
    if len(figs) > limit:
        blocks.append(
            Text(
                f"{len(figs) - limit} more potency figure(s) in temporal/{POTENCY_DIR}/ "
                f"(not embedded, to keep this report small).",
                "note",
            )
        )
    last = metrics.loc[metrics.groupby(["cell_line", "plate", "drug"])["time_h"].idxmax()]
    cols = ["cell_line", "plate", "drug", "time_h", "GR50", "GRmax", "GR_AOC", "fit"]
    blocks.append(
        Table(
            last[[c for c in cols if c in last.columns]].reset_index(drop=True),
            "GR metrics per drug at the last time point",
            max_rows=40,
        )
    )
    return blocks


def screen_overview(manifest: pd.DataFrame) -> list[Figure | Table | Text]:
    """Plates, wells, time points, images per well and missing images of a manifest."""
    from phenolapse.data.manifest import summarize_manifest

    blocks: list[Figure | Table | Text] = [
        Text(
            f"{len(manifest)} images, {manifest['cell_line'].nunique()} cell line(s), "
            f"{manifest.groupby(['cell_line', 'plate']).ngroups} plate(s), "
            f"{manifest.groupby(['cell_line', 'plate', 'well']).ngroups} wells, "
            f"{manifest['time_h'].nunique()} distinct time points "
            f"({manifest['time_h'].min():g} h to {manifest['time_h'].max():g} h after drug addition)."
        ),
        Table(summarize_manifest(manifest), "Per plate"),
    ]
    per_well = manifest.groupby(["cell_line", "plate", "well"]).agg(
        images=("image_path", "size"), time_points=("time_h", "nunique")
    )
    plate_times = (
        manifest.groupby(["cell_line", "plate"])["time_h"].nunique().rename("plate_time_points")
    )
    per_well = per_well.join(plate_times, on=["cell_line", "plate"])
    per_well["missing_time_points"] = per_well["plate_time_points"] - per_well["time_points"]
    desc = per_well["images"].describe()
    blocks.append(
        Text(
            f"Images per well: min {desc['min']:g}, median {per_well['images'].median():g}, "
            f"max {desc['max']:g}. Wells with missing time points: "
            f"{int((per_well['missing_time_points'] > 0).sum())}."
        )
    )
    missing = per_well[per_well["missing_time_points"] > 0].reset_index()
    if len(missing):
        blocks.append(Table(missing, "Wells with missing time points"))
    design = (
        manifest.drop_duplicates(["cell_line", "plate", "well"])
        .groupby(["role", "drug"], dropna=False)
        .agg(wells=("well", "size"), concentrations=("concentration_um", "nunique"))
        .reset_index()
    )
    blocks.append(Table(design, "Plate design: wells per drug and role", max_rows=80))
    return blocks


def _truth_agreement(
    out_dir: Path, outputs: dict[str, dict[str, str]]
) -> list[Figure | Table | Text]:
    truth_rel = outputs.get("simulate", {}).get("truth")
    ann_rel = outputs.get("temporal", {}).get("annotations")
    if not truth_rel or not ann_rel:
        return []
    truth, ann = _csv(out_dir / truth_rel), _csv(out_dir / ann_rel)
    if truth is None or ann is None:
        return []
    key = ["cell_line", "drug", "concentration_um"]
    m = ann.merge(
        truth[[*key, "effect"]].rename(columns={"effect": "true_effect"}), on=key, how="inner"
    )
    if m.empty:
        return []
    acc = float(np.mean(m["effect"] == m["true_effect"]))
    cross = (
        pd.crosstab(m["true_effect"], m["effect"])
        .reset_index()
        .rename(columns={"true_effect": "true \\ called"})
    )
    return [
        Text(
            f"Simulated screen: the automatic annotation agrees with the simulator's truth for "
            f"{acc:.1%} of {len(m)} conditions."
        ),
        Table(cross, "Truth (rows) against annotation (columns)"),
    ]


def _methods(cfg: Any, manifest: pd.DataFrame | None) -> list[Figure | Table | Text]:
    pre = cfg.preprocess
    tr = cfg.train
    tm = cfg.temporal
    ln = cfg.lens
    n = f"{len(manifest)} images" if manifest is not None else "the images"
    crops = ", ".join(f"{c.n} x scale {c.scale[0]:g}-{c.scale[1]:g}" for c in tr.crops)
    how = {"center": "centre-cropped", "tile": "tiled", "full": "used whole"}[pre.mode]
    size = f" to {pre.crop_size} px" if pre.crop_size and pre.mode != "full" else ""
    side = pre.image_size // 4
    lines = [
        f"Images ({n}) were {how}{size}, resized to {pre.image_size} px with "
        f"antialiased bilinear interpolation and scaled to [0, 1] ({pre.intensity} intensity scaling).",
        (
            f"A convolutional autoencoder (189,381 parameters, 4 x {side} x {side} latent) was trained "
            f"self-supervised with binary cross-entropy for {tr.epochs} epochs (Adam, lr {tr.lr:g}, x{tr.lr_decay:g} "
            f"after epoch {tr.lr_decay_epoch}, batch {tr.batch_size}) on multi-crop views ({crops}; horizontal flip "
            f"p {tr.flip_p:g}, Gaussian blur p {tr.blur_p:g}), validation split by well."
            if cfg.weights is None
            else f"Features came from the given ConvAE weights ({Path(cfg.weights).name})."
        ),
        "Per-image features (the flattened latent) were averaged per plate, well and time point.",
        (
            f"Distance to control: {tm.distance.metric} distance between each treatment's mean profile and the mean "
            f"of the plate's negative-control wells at the nearest control time point; series kept for t > "
            f"{tm.series.min_time_h:g} h, rolling median of window {tm.series.rolling_window}, first "
            f"{tm.series.drop_first} and last {tm.series.drop_last} points dropped, scaled ({tm.series.scaling}). "
            f"Series were clustered with DTW k-means (DBA barycentres, Sakoe-Chiba window {tm.cluster.window}, "
            f"k {'chosen by DTW silhouette' if tm.cluster.k is None else tm.cluster.k}, seed {tm.cluster.seed}); "
            f"profiles were first normalised per plate against the negative-control wells "
            f"({tm.normalization.method}); distances are shown in units of the control's own spread "
            f"(grey band: the control's range). Effects were annotated from where each condition went "
            f"along the control's own path in feature space and from the label-free confluence / GR "
            f"readout (rules in temporal/annotation_rules.md)."
        ),
        (
            f"Drug classification: frozen encoder + linear head on held-out wells ({ln.test_fraction:.0%} of wells), "
            f"{ln.concentration} concentration(s), last {ln.last_time_points} time points; "
            f"lens initialised from the extractor, loss BCE + lambda x CE with lambda in {ln.coefs}, seeds {ln.seeds}."
        ),
    ]
    return [Text(line) for line in lines]


def build_pipeline_report(out_dir: Path, cfg: Any, outputs: dict[str, dict[str, str]]) -> Path:
    """Write ``out_dir/report.html`` from the stage outputs of a run."""
    out_dir = Path(out_dir)
    manifest: pd.DataFrame | None = None
    sections: list[Section] = []
    if "ingest" in outputs:
        manifest = read_manifest(out_dir / outputs["ingest"]["manifest"])
        sections.append(Section(SECTION_TITLES[0], screen_overview(manifest)))
    else:
        sections.append(Section(SECTION_TITLES[0], [Text("No manifest in this run.", "missing")]))

    train_blocks: list[Figure | Table | Text] = []
    if "train" in outputs:
        train_blocks.append(
            Figure(
                out_dir / outputs["train"]["loss_curve"],
                "Training and validation loss per epoch; beside it, the held-out wells' k-NN "
                "balanced accuracy (epoch 0: the untrained encoder)",
            )
        )
        hist = _csv(out_dir / outputs["train"]["history"])
        if hist is not None:
            train_blocks.append(Table(hist, "Loss per epoch (epoch 0: the untrained model)"))
    else:
        train_blocks.append(Text(f"No training in this run; weights: {cfg.weights}."))
    sections.append(Section(SECTION_TITLES[1], train_blocks))

    t_blocks: list[Figure | Table | Text | Links] = []
    gr_blocks: list[Figure | Table | Text] = []
    if "temporal" in outputs:
        tdir = out_dir / "temporal"
        ann = _csv(tdir / "annotations.csv")
        if ann is not None and "effect" in ann:
            counts = (
                ann["effect"].value_counts().rename_axis("effect").reset_index(name="conditions")
            )
            t_blocks.append(
                Table(counts, "Conditions (cell line x drug x concentration) per effect")
            )
        t_blocks += _truth_agreement(out_dir, outputs)
        pages, on_pages = drug_pages(tdir / "figures", out_dir / PAGES_DIR, title=cfg.title)
        potency_dir = tdir / POTENCY_DIR
        shown = [
            f
            for f in _figures(tdir, recursive=True, limit=10**6)
            if f.path.name not in on_pages and potency_dir not in f.path.parents
        ]
        t_blocks += [*shown[:_MAX_FIGURES], *pages]
        cons = _csv(tdir / "consensus.csv")
        if cons is not None:
            t_blocks.append(Table(cons, "Consensus effect over cell lines", max_rows=80))
        if ann is not None and "onset_h" in ann:
            cols = [c for c in ("cell_line", "drug", "concentration_um", "effect", "onset_h",
                                "feature_effect", "growth_effect") if c in ann]  # fmt: skip
            onset = ann[ann["onset_h"].notna()].sort_values("onset_h")[cols]
            if not onset.empty:
                t_blocks.append(
                    Table(onset, "When the features leave the control band (onset_h)", max_rows=40)
                )
        if ann is not None:
            t_blocks.append(Table(ann, "Annotations", max_rows=40))
        gr = _csv(tdir / "gr_summary.csv")
        if gr is not None:
            gr_blocks.append(
                Table(gr, "GR values per drug and concentration (Hafner et al. 2016)", max_rows=80)
            )
        gr_blocks += potency_blocks(tdir)
    sections.append(
        Section(SECTION_TITLES[2], t_blocks or [Text("Temporal stage not run.", "missing")])
    )
    sections.append(
        Section(SECTION_TITLES[3], gr_blocks or [Text("No growth readout in this run.", "missing")])
    )

    l_blocks: list[Figure | Table | Text] = []
    if "lens" in outputs:
        ldir = out_dir / "lens"
        summary = ldir / "summary.json"
        if summary.is_file():
            data = json.loads(summary.read_text())
            for text in data.get("warnings", []):
                l_blocks.append(Text(f"Warning: {text}", "missing"))
            flat = {k: v for k, v in data.items() if isinstance(v, (int, float, str))}
            if flat:
                l_blocks.append(
                    Table(
                        pd.DataFrame([flat])
                        .T.reset_index()
                        .set_axis(["quantity", "value"], axis=1),
                        "Summary (held-out wells)",
                    )
                )
        res = _csv(ldir / "lens_results.csv")
        if res is not None:
            l_blocks.append(
                Table(
                    res,
                    "Held-out accuracy per seed: plain head on F(x) vs lens head on F(L(x))",
                    max_rows=40,
                )
            )
        l_blocks += _figures(ldir)
        l_blocks += _figures(ldir / "importance", limit=12, recursive=True)
    sections.append(
        Section(SECTION_TITLES[4], l_blocks or [Text("Lens stage not run.", "missing")])
    )

    c_blocks: list[Figure | Table | Text] = []
    if "compare" in outputs:
        cdir = out_dir / "compare"
        comp = _csv(cdir / "comparison.csv")
        if comp is not None:
            wide = comp.pivot_table(
                index=["task", "metric"], columns="extractor", values="value"
            ).reset_index()
            c_blocks.append(Table(wide, "Every metric per extractor (comparison.csv)", max_rows=80))
        c_blocks += _figures(cdir)
    sections.append(
        Section(SECTION_TITLES[5], c_blocks or [Text("Comparison stage not run.", "missing")])
    )

    sections.append(Section(SECTION_TITLES[6], _methods(cfg, manifest)))
    return write_html(sections, out_dir / "report.html", title=cfg.title, subtitle=str(out_dir))

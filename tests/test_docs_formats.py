"""docs/formats.md names every file, column and metric the stages write.

Every stage runs here on small synthetic input (the temporal stage and the comparison on
generated feature tables, training and the lens on 24 generated 32 x 32 images, one epoch); every
column of every table it writes, and every checkpoint or JSON key, must appear in the documentation
as `` `name` ``. Beside the names, a few numbers are checked against what the input was built to
show. About 10-15 s on two cores.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats.md"
TEXT = DOC.read_text(encoding="utf-8")
TOKENS = set(re.findall(r"`([^`\n]+)`", TEXT))
NUMERIC = ("<i>", "<NNN>")


def _template(token: str) -> re.Pattern[str]:
    """A documented name with placeholders (``t<i>``, ``curves_<cell_line>_<drug>``) as a regex."""
    parts = re.split(r"(<[^>]+>)", token)
    out = []
    for part in parts:
        if part in NUMERIC:
            out.append(r"\d+")
        elif part.startswith("<") and part.endswith(">"):
            out.append(r"[^/]+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def _specific(token: str) -> bool:
    """A placeholder name that documents something: numeric placeholders only, or enough literal
    text (a bare `<m>` would match any name)."""
    holes = re.findall(r"<[^>]+>", token)
    return bool(holes) and (
        all(h in NUMERIC for h in holes) or len(re.sub(r"<[^>]+>", "", token)) >= 3
    )


TEMPLATES = [_template(t) for t in TOKENS if _specific(t)]


def documented(name: str) -> bool:
    """Whether ``name`` appears in docs/formats.md in backticks, literally or via a placeholder."""
    return name in TOKENS or any(p.fullmatch(name) for p in TEMPLATES)


def undocumented(names: list[str] | set[str]) -> list[str]:
    """The names not documented, sorted."""
    return sorted(n for n in names if not documented(str(n)))


def table_columns(path: Path) -> list[str]:
    """Columns of a written CSV or Parquet table."""
    if path.suffix == ".parquet":
        return [str(c) for c in pd.read_parquet(path).columns]
    return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def check_tables(out: Path) -> dict[str, list[str]]:
    """Every CSV/Parquet under ``out`` (relative path -> its undocumented columns, if any)."""
    missing = {}
    for path in sorted([*out.rglob("*.csv"), *out.rglob("*.parquet")]):
        bad = undocumented(table_columns(path))
        if bad:
            missing[str(path.relative_to(out))] = bad
    return missing


def test_placeholder_matching() -> None:
    assert documented("t0") and documented("t17")
    assert not documented("tx") and not documented("no_such_column")
    assert documented("median_replicate_distance_cosine")


def test_simulated_truth_documented() -> None:
    from phenolapse.data.simulator import SimulationConfig, screen_design

    platemap, truth = screen_design(SimulationConfig.preset("tiny", seed=0))
    assert undocumented(list(truth.columns)) == []
    assert undocumented(list(platemap.columns)) == []
    assert undocumented(set(truth["signature"])) == []
    # effect_level 1 gives the drug's own class, 0.5 gives mixed, 0 no effect
    full = truth[truth["effect_level"] == 1.0]
    assert (full["effect"] == full["drug_class"]).all()
    assert (truth.loc[truth["effect_level"] == 0.5, "effect"] == "mixed").all()
    assert (truth.loc[truth["effect_level"] == 0.0, "effect"] == "no_effect").all()


# ------------------------------------------------------------------------------------------ temporal


def synthetic_temporal_inputs(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Profiles (one plate, 13 time points) and confluence with a toxic, a static, an inert drug."""
    rng = np.random.default_rng(seed)
    times = [4.0 * i for i in range(13)]
    conds = [("DMSO", 0.0, "negative_control")] * 4 + [("PBS", 0.0, "untreated")] * 2
    for drug in ("tox", "stat", "inert"):
        for conc in (0.1, 1.0):
            conds += [(drug, conc, "treatment")] * 3
    direction = rng.normal(size=8)
    rows, feats, growth = [], [], []
    for w, (drug, conc, role) in enumerate(conds):
        well = f"{'ABCDEFGH'[w // 12]}{w % 12 + 1}"
        slope = {"tox": 1.0, "stat": 0.5}.get(drug, 0.0) * (1.0 if conc == 1.0 else 0.4)
        rate = {"tox": -0.03, "stat": 0.0}.get(drug, 0.03) if conc == 1.0 else 0.02
        for t in times:
            rows.append(
                {
                    "Metadata_cell_line": "CL0",
                    "Metadata_plate": "P1",
                    "Metadata_well": well,
                    "Metadata_time_h": t,
                    "Metadata_drug": drug,
                    "Metadata_concentration_um": conc,
                    "Metadata_role": role,
                }
            )
            feats.append(direction * slope * t / 10 + rng.normal(size=8) * 0.2)
            growth.append(
                {
                    "cell_line": "CL0",
                    "plate": "P1",
                    "well": well,
                    "time_h": t,
                    "drug": drug,
                    "concentration_um": conc,
                    "role": role,
                    "confluence": min(0.95, 0.2 * np.exp(rate * t)) + rng.normal() * 0.005,
                }
            )
    f = pd.DataFrame(np.array(feats), columns=[f"f{i}" for i in range(8)])
    return pd.concat([pd.DataFrame(rows), f], axis=1), pd.DataFrame(growth)


@pytest.fixture(scope="module")
def temporal_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from phenolapse.report.temporal_figures import write_temporal_figures
    from phenolapse.temporal.config import TemporalConfig
    from phenolapse.temporal.pipeline import run_temporal

    profiles, growth = synthetic_temporal_inputs()
    cfg = TemporalConfig.model_validate(
        {
            "progress": False,
            "distance": {"n_bootstrap": 20, "null_draws": 10},
            "cluster": {"ks": [2, 3], "n_init": 1},
        }
    )
    out = tmp_path_factory.mktemp("temporal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_temporal(profiles, out_dir=out, config=cfg, growth=growth)
        write_temporal_figures(result, out / "figures", drugs=["tox"])
    return out


def test_temporal_tables_documented(temporal_out: Path) -> None:
    names = {p.name for p in temporal_out.iterdir() if p.is_file()}
    expected = {
        "distances.parquet",
        "distances_replicates.parquet",
        "control_path.parquet",
        "series.parquet",
        "clusters.csv",
        "cluster_centroids.csv",
        "k_selection.csv",
        "annotations.csv",
        "consensus.csv",
        "gr.csv",
        "gr_summary.csv",
        "confluence.csv",
        "annotation_rules.md",
        "temporal_config.yaml",
    }
    assert names == expected
    assert undocumented(names) == []
    assert check_tables(temporal_out) == {}
    ann = pd.read_csv(temporal_out / "annotations.csv")
    assert "late_relative_distance" in ann.columns
    # the synthetic drugs get the calls their growth was built for
    call = ann.set_index(["drug", "concentration_um"])["effect"]
    assert call[("tox", 1.0)] == "cytotoxic"
    assert call[("stat", 1.0)] == "cytostatic"
    assert call[("inert", 1.0)] == "no_effect"
    assert set(ann["growth_rule"]) <= {
        "1:died",
        "2:partial_death",
        "3:like_control",
        "4:borderline",
        "5:stopped",
        "6:slowed",
        "undefined",
    }
    assert all(f"`{r}`" in TEXT for r in set(ann["growth_rule"]))
    assert all(f"`{r}`" in TEXT for r in set(ann["feature_rule"]))


def test_temporal_thresholds_and_figures_documented(temporal_out: Path) -> None:
    from phenolapse.temporal.config import AnnotationConfig

    rules = (temporal_out / "annotation_rules.md").read_text()
    for name, default in AnnotationConfig().model_dump().items():
        assert f"- `{name}` = {default}" in rules
        # each threshold is in the documentation's threshold table with its default
        assert re.search(rf"\| `{name}` \| {re.escape(str(default))} \|", TEXT), name
    figures = sorted(p.name for p in (temporal_out / "figures").iterdir())
    assert "figure_names.csv" in figures and "`figure_names.csv`" in TEXT
    figures.remove("figure_names.csv")
    assert {Path(f).suffix for f in figures} == {".png", ".svg"}
    assert undocumented({Path(f).stem for f in figures}) == []
    assert "curves_CL0_tox.png" in figures


# ------------------------------------------------------------------------------------------ compare


def synthetic_profiles(*, signal: float, seed: int) -> pd.DataFrame:
    """One cell line: 3 drugs x 2 concentrations x 3 wells, 4 control wells, 2 time points."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 12)) * signal
    wells = [
        (f"drug{d}", "treatment", c, centers[d] * (1.0 if c == 10.0 else 0.1))
        for d in range(3)
        for c in (0.1, 10.0)
        for _ in range(3)
    ]
    wells += [("DMSO", "negative_control", 0.0, np.zeros(12))] * 4
    rows, feats = [], []
    for w, (drug, role, conc, shift) in enumerate(wells):
        for t in (24.0, 48.0):
            rows.append(
                {
                    "Metadata_cell_line": "CL0",
                    "Metadata_plate": "P1",
                    "Metadata_well": f"{'AB'[w // 12]}{w % 12 + 1}",
                    "Metadata_time_h": t,
                    "Metadata_drug": drug,
                    "Metadata_concentration_um": conc,
                    "Metadata_role": role,
                }
            )
            feats.append(shift + rng.normal(size=12))
    f = pd.DataFrame(np.array(feats), columns=[f"feat_{i:02d}" for i in range(12)])
    return pd.concat([pd.DataFrame(rows), f], axis=1)


def test_comparison_tables_and_metrics_documented(tmp_path: Path) -> None:
    from threadpoolctl import threadpool_limits

    from phenolapse.comparison import CompareConfig, run_comparison
    from phenolapse.comparison.run import TASKS

    cfg = CompareConfig.model_validate(
        {
            "embedding": "pca",
            "null_size": 20,
            "progress": False,
            "min_cluster_sizes": [3],
            "figures": False,
        }
    )
    with threadpool_limits(1):
        res = run_comparison(
            out=tmp_path,
            features={
                "good": synthetic_profiles(signal=5.0, seed=0),
                "noise": synthetic_profiles(signal=0.0, seed=1),
            },
            config=cfg,
        )
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "comparison.csv",
        "comparison.md",
        "retrieval_details.csv",
        "clustering_details.csv",
        "alignment.json",
    }
    assert undocumented(names) == []
    assert check_tables(tmp_path) == {}
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table.columns) == ["extractor", "task", "metric", "value"]
    assert undocumented(set(table["task"])) == []
    assert undocumented(set(table["metric"])) == []
    assert undocumented(set(TASKS)) == []
    for metric in ("seconds_per_1000_images", "model_seconds_per_1000_images", "n_images_timed"):
        assert documented(metric)
    clustering = pd.read_csv(tmp_path / "clustering_details.csv")
    assert undocumented(set(clustering["metric"])) == []
    assert set(json.loads((tmp_path / "alignment.json").read_text())) <= TOKENS
    # the informative extractor retrieves its replicates perfectly, the noise one does not
    value = res.table.set_index(["extractor", "metric"])["value"]
    assert value[("good", "map_vs_drugs")] == pytest.approx(1.0)
    assert value[("noise", "map_vs_drugs")] < 0.9


# ------------------------------------------------------------------------------ training, pipeline


def test_training_history_and_pipeline_layout_documented() -> None:
    from phenolapse.pipeline.runner import LOCK_NAME, MARKER_DIR
    from phenolapse.pipeline.stages import STAGE_NAMES
    from phenolapse.training.loop import HISTORY_COLUMNS
    from phenolapse.training.loop import LOCK_NAME as TRAIN_LOCK

    assert undocumented(HISTORY_COLUMNS) == []
    assert undocumented(STAGE_NAMES) == []
    assert f"OUT/{MARKER_DIR}/<stage>.json" in TEXT
    assert f"OUT/{LOCK_NAME}" in TEXT
    assert documented(TRAIN_LOCK)
    for name in ("OUT/phenolapse.log", "OUT/report.html"):
        assert name in TEXT


def _tiny_images(root: Path) -> pd.DataFrame:
    """Manifest of 24 small noise images (simulator names): DMSO and two drugs, 4 wells, 2 times."""
    from PIL import Image

    from phenolapse.data.manifest import build_manifest

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    classes = [
        ("DMSO", "negative_control", 0.0),
        ("drugA", "treatment", 1.0),
        ("drugB", "treatment", 1.0),
    ]
    plate_map = []
    for d, (drug, role, conc) in enumerate(classes):
        for w in range(4):
            well = f"{'ABC'[d]}{w + 1}"
            plate_map.append({"well": well, "drug": drug, "concentration_um": conc, "role": role})
            for hours in (0, 4):
                img = (rng.random((32, 32)) * 80 + 60 * d).astype(np.uint8)
                Image.fromarray(img).save(root / f"CL_Phase_{well}_1_00d{hours:02d}h00m.png")
    return build_manifest(root, platemap=pd.DataFrame(plate_map), progress=False)


def test_manifest_and_profiles_documented(tmp_path: Path) -> None:
    from phenolapse.embedding import make_profiles

    manifest = _tiny_images(tmp_path)
    assert len(manifest) == 24
    assert undocumented(list(manifest.columns)) == []
    feats = np.arange(24 * 3, dtype=np.float32).reshape(24, 3)
    profiles = make_profiles(manifest, feats, feature_prefix="convae")
    meta = [c for c in profiles.columns if c.startswith("Metadata_")]
    assert undocumented(meta) == []
    assert [c for c in profiles.columns if c not in meta] == [
        "convae_0000",
        "convae_0001",
        "convae_0002",
    ]
    # one image per well and time point: each profile is its image's features
    assert (profiles["Metadata_n_images"] == 1).all()


def test_training_outputs_documented(tmp_path: Path) -> None:
    import torch

    from phenolapse.training.config import TrainConfig
    from phenolapse.training.loop import train

    manifest = _tiny_images(tmp_path / "img")
    cfg = TrainConfig.model_validate(
        {
            "preprocess": {"crop_size": None, "image_size": 32},
            "epochs": 1,
            "batch_size": 8,
            "crops": [{"n": 1, "scale": [1.0, 1.0]}],
            "progress": False,
            "device": "cpu",
            "val_fraction": 0.25,
        }
    )
    run = tmp_path / "run"
    train(manifest, out=run, config=cfg)
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert files == [
        "checkpoints/epoch_001.pt",
        "config.yaml",
        "history.csv",
        "loss_curve.png",
        "model.pt",
    ]
    assert check_tables(run) == {}
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [0, 1]
    assert (history["val_loss"] >= history["val_loss_floor"] - 1e-6).all()
    model = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    assert undocumented(set(model)) == []
    ckpt = torch.load(run / "checkpoints" / "epoch_001.pt", map_location="cpu", weights_only=False)
    assert undocumented(set(ckpt)) == []
    assert undocumented(set(ckpt["history"])) == []


def test_lens_outputs_documented(tmp_path: Path) -> None:
    import torch

    from phenolapse.lens import LensConfig, run_lens
    from phenolapse.models.convae import ConvAE, save_convae
    from phenolapse.report.lens_figures import write_lens_figures

    manifest = _tiny_images(tmp_path / "img")
    torch.manual_seed(0)
    weights = save_convae(ConvAE(), tmp_path / "convae.pt")
    cfg = LensConfig.model_validate(
        {
            "preprocess": {"crop_size": None, "image_size": 32},
            "coefs": [1.0],
            "seeds": [0, 1],
            "epochs": 1,
            "head_epochs": 5,
            "importance_examples": 1,
            "ig_steps": 2,
            "progress": False,
        }
    )
    out = tmp_path / "lens"
    result = run_lens(manifest, weights=weights, out=out, config=cfg)
    write_lens_figures(result)
    top = {p.name + ("/" if p.is_dir() else "") for p in out.iterdir()}
    assert undocumented(top) == []
    for name in ("confusion_matrix.csv", "confusion_matrix_lens.csv"):
        cm = pd.read_csv(out / name)
        assert list(cm.columns) == ["true", *result.classes]
        assert int(cm.drop(columns="true").to_numpy().sum()) == int(
            result.results.loc[result.results["cell_line"] == "pooled", "n_test"].sum()
        )
    tables = {k: v for k, v in check_tables(out).items() if not k.startswith("confusion_matrix")}
    assert tables == {}
    summary = json.loads((out / "summary.json").read_text())
    assert undocumented(set(summary)) == []
    imp = {p.name for p in (out / "importance").iterdir()}
    assert {"examples.csv", "signature_overlap.csv"} <= imp
    for png in imp - {"examples.csv", "signature_overlap.csv"}:
        rule = png.rsplit("_", 1)[0]
        assert documented(rule) and re.fullmatch(r".+_\d{3}\.png", png), png

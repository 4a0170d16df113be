"""The run configuration: documented defaults, strict validation before any work."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from phenolapse.cli import app
from phenolapse.errors import ConfigError
from phenolapse.pipeline.config import (
    PipelineConfig,
    default_config_text,
    field_docs,
    load_pipeline_config,
)


def test_default_config_round_trips_and_documents_every_option(tmp_path: Path) -> None:
    text = default_config_text()
    data = yaml.safe_load(text)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    cfg = load_pipeline_config(path)
    assert cfg.model_dump(exclude={"output_dir"}) == PipelineConfig().model_dump(
        exclude={"output_dir"}
    )
    assert cfg.output_dir == tmp_path / "phenolapse_out"  # relative to the file
    # every key of the top level and of the stage sections carries a comment line above it
    lines = [line.strip() for line in text.splitlines()]
    undocumented = [
        line.split(":")[0]
        for prev, line in itertools.pairwise(lines)
        if line and not line.startswith("#") and not prev.startswith("#")
    ]
    assert undocumented == []
    assert data["train"]["lr"] == pytest.approx(1e-3)
    assert data["train"]["batch_size"] == 64
    assert data["temporal"]["series"]["rolling_window"] == 5


def test_field_docs_reads_numpydoc() -> None:
    docs = field_docs(PipelineConfig)
    assert "report.html" in docs["output_dir"]


@pytest.mark.bad_input("config check")
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"trian": {}}, "trian: unknown key"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"temporal": {"distance": {"metric": "manhattan"}}}, "temporal.distance.metric"),
        ({"screen": {"images_dir": "nope/", "simulate": None}}, "screen.images_dir"),
        ({"weights": "missing.pt"}, "weights"),
    ],
)
def test_invalid_config_is_rejected_naming_the_key(
    tmp_path: Path, edit: dict, message: str
) -> None:  # type: ignore[type-arg]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(edit))
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_pipeline_config(path)
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 2
    assert message.split(":")[0] in res.output
    assert not (tmp_path / "phenolapse_out").exists()  # nothing started


@pytest.mark.bad_input("config check")
def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("title: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline_config(path)


def test_configuration_reference_is_current() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert default_config_text() in doc.read_text(), "regenerate docs/configuration.md"


@pytest.mark.parametrize(
    "example", sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
)
def test_example_configs_are_valid(example: Path) -> None:
    cfg = load_pipeline_config(example)
    assert cfg.screen.simulate is not None and cfg.screen.simulate.preset == "small"
    if example.name == "small_cpu.yaml":
        assert cfg.preprocess.image_size == 64 and cfg.train.max_images == 1000
        assert cfg.compare.convae_features == "pooled"
    else:  # the self-supervised recipes: every stage sees the size the encoder was trained at
        size = cfg.train.preprocess.image_size
        assert cfg.train.objective == "dino" and cfg.train.encoder == "resnet"
        assert cfg.preprocess.image_size == cfg.embed.preprocess.image_size == size
        assert cfg.compare.preprocess.image_size == size and not cfg.stages.lens

"""Stage configurations: one YAML loader with overrides, renamed options, one device rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phenolapse.cli._common import config_from_options
from phenolapse.comparison import CompareConfig
from phenolapse.embedding.config import EmbedConfig
from phenolapse.errors import ConfigError
from phenolapse.lens.config import LensConfig
from phenolapse.pipeline.config import make_pipeline_config
from phenolapse.stage_config import merge_options
from phenolapse.temporal.config import DTWClusterConfig, TemporalConfig
from phenolapse.training.config import TrainConfig


def _yaml(tmp_path: Path, data: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_merge_options_skips_none_and_merges_nested_keys() -> None:
    base = {"a": 1, "pre": {"x": 1, "y": 2}}
    out = merge_options(base, {"a": None, "pre": {"y": 3, "z": None}, "b": 4})
    assert out == {"a": 1, "pre": {"x": 1, "y": 3}, "b": 4}
    assert base == {"a": 1, "pre": {"x": 1, "y": 2}}  # not modified


def test_from_yaml_overrides_win_and_nested_keys_merge(tmp_path: Path) -> None:
    path = _yaml(tmp_path, {"epochs": 2, "preprocess": {"crop_size": 128, "image_size": 32}})
    cfg = LensConfig.from_yaml(path, epochs=5, preprocess={"image_size": 64})
    assert cfg.epochs == 5
    assert (cfg.preprocess.crop_size, cfg.preprocess.image_size) == (128, 64)
    cluster = DTWClusterConfig.from_yaml(_yaml(tmp_path, {"k": 3}), window=2)
    assert (cluster.k, cluster.window) == (3, 2)


def test_stage_section_of_a_run_configuration_is_read(tmp_path: Path) -> None:
    path = _yaml(tmp_path, {"temporal": {"distance": {"metric": "cosine"}}, "lens": {"epochs": 7}})
    assert TemporalConfig.from_yaml(path).distance.metric == "cosine"
    assert LensConfig.from_yaml(path).epochs == 7


def test_bad_keys_name_the_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"(?s)c\.yaml.*epohcs: unknown key"):
        LensConfig.from_yaml(_yaml(tmp_path, {"epohcs": 2}))


def test_renamed_option_is_still_read() -> None:
    with pytest.warns(DeprecationWarning, match="last_time_points"):
        cfg = LensConfig.model_validate({"last_n_timepoints": 4})
    assert cfg.last_time_points == 4


def test_device_defaults_and_rule_agree_across_stages() -> None:
    for model in (TrainConfig, EmbedConfig, LensConfig, CompareConfig):
        assert model().device == "auto"
        assert model.model_validate({"device": "cuda:1"}).device == "cuda:1"
        with pytest.raises(ValueError, match="device"):
            model.model_validate({"device": "gpu"})


def test_cli_helper_merges_flags_into_the_file(tmp_path: Path) -> None:
    path = _yaml(tmp_path, {"train": {"epochs": 3, "preprocess": {"crop_size": 128}}})
    cfg = config_from_options(
        TrainConfig, path, section="train", epochs=None, lr=0.01, preprocess={"image_size": 64}
    )
    assert (cfg.epochs, cfg.lr) == (3, 0.01)
    assert (cfg.preprocess.crop_size, cfg.preprocess.image_size) == (128, 64)
    assert config_from_options(CompareConfig, None, seed=4).seed == 4


def test_a_stage_preprocess_wins_over_the_run_preprocess() -> None:
    cfg = make_pipeline_config(
        {"preprocess": {"image_size": 64}, "lens": {"preprocess": {"mode": "tile"}}}
    )
    lens = cfg.stage_config("lens").preprocess
    assert (lens.mode, lens.image_size) == ("tile", 64)
    assert cfg.stage_config("embed").preprocess == cfg.preprocess

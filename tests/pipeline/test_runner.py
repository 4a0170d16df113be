"""The stage runner: caching by content, --from/--until, the output lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from phenolapse.errors import ConfigError, OutputLockedError
from phenolapse.pipeline.runner import Stage, StageContext, output_lock, run_stages


def _stages(calls: list[str]) -> list[Stage]:
    def make(name: str, deps: tuple[str, ...], key: str) -> Stage:
        def run(ctx: StageContext) -> dict[str, str]:
            calls.append(name)
            (ctx.out_dir / f"{name}.txt").write_text(str(ctx.config[key]))
            return {"out": f"{name}.txt"}

        return Stage(name, deps, lambda ctx: ctx.config[key], run)

    return [make("a", (), "a"), make("b", ("a",), "b"), make("c", ("b",), "c")]


def test_rerun_unchanged_does_nothing(tmp_path: Path) -> None:
    calls: list[str] = []
    cfg = {"a": 1, "b": 2, "c": 3}
    first = run_stages(_stages(calls), out_dir=tmp_path, config=cfg, echo=lambda s: None)
    assert [r.status for r in first] == ["ran", "ran", "ran"]
    second = run_stages(_stages(calls), out_dir=tmp_path, config=cfg, echo=lambda s: None)
    assert [r.status for r in second] == ["cached", "cached", "cached"]
    assert calls == ["a", "b", "c"]


def test_changing_one_option_reruns_that_stage_onwards(tmp_path: Path) -> None:
    calls: list[str] = []
    run_stages(
        _stages(calls), out_dir=tmp_path, config={"a": 1, "b": 2, "c": 3}, echo=lambda s: None
    )
    calls.clear()
    reps = run_stages(
        _stages(calls), out_dir=tmp_path, config={"a": 1, "b": 5, "c": 3}, echo=lambda s: None
    )
    assert [r.status for r in reps] == ["cached", "ran", "ran"]
    assert calls == ["b", "c"]
    assert (tmp_path / "b.txt").read_text() == "5"


def test_missing_output_is_recomputed(tmp_path: Path) -> None:
    calls: list[str] = []
    cfg = {"a": 1, "b": 2, "c": 3}
    run_stages(_stages(calls), out_dir=tmp_path, config=cfg, echo=lambda s: None)
    (tmp_path / "c.txt").unlink()
    calls.clear()
    run_stages(_stages(calls), out_dir=tmp_path, config=cfg, echo=lambda s: None)
    assert calls == ["c"]


@pytest.mark.bad_input("run")
def test_from_and_until(tmp_path: Path) -> None:
    calls: list[str] = []
    cfg = {"a": 1, "b": 2, "c": 3}
    reps = run_stages(_stages(calls), out_dir=tmp_path, config=cfg, until="b", echo=lambda s: None)
    assert [r.status for r in reps] == ["ran", "ran", "skipped"]
    calls.clear()
    reps = run_stages(_stages(calls), out_dir=tmp_path, config=cfg, start="b", echo=lambda s: None)
    assert calls == ["b", "c"]
    with pytest.raises(ConfigError, match="no such stage"):
        run_stages(_stages(calls), out_dir=tmp_path, config=cfg, start="zzz", echo=lambda s: None)


def test_interrupted_stage_reruns_with_resume_flag(tmp_path: Path) -> None:
    seen: list[bool] = []

    def boom(ctx: StageContext) -> dict[str, str]:
        seen.append(ctx.resume)
        if len(seen) == 1:
            raise KeyboardInterrupt
        (ctx.out_dir / "x").write_text("ok")
        return {"x": "x"}

    stages = [Stage("x", (), lambda ctx: 1, boom)]
    with pytest.raises(KeyboardInterrupt):
        run_stages(stages, out_dir=tmp_path, config={}, echo=lambda s: None)
    run_stages(stages, out_dir=tmp_path, config={}, echo=lambda s: None)
    assert seen == [False, True]


def test_lock_refuses_second_writer(tmp_path: Path) -> None:
    with (
        output_lock(tmp_path),
        pytest.raises(OutputLockedError, match="in use"),
        output_lock(tmp_path),
    ):
        pass
    with output_lock(tmp_path):  # released after the first holder leaves
        pass


def _writer(name: str, folder: str) -> Stage:
    def run(ctx: StageContext) -> dict[str, str]:
        target = ctx.out_dir / folder
        if target.exists():
            ctx.remove(folder)
        target.mkdir()
        (target / "result.txt").write_text(str(ctx.config))
        return {"dir": folder}

    return Stage(name, (), lambda ctx: ctx.config, run, writes=(folder,))


def test_stage_replaces_only_folders_recorded_as_its_own(tmp_path: Path) -> None:
    from phenolapse.pipeline.runner import WRITTEN_NAME, read_written

    run_stages([_writer("a", "res")], out_dir=tmp_path, config=1, echo=lambda s: None)
    assert read_written(tmp_path) == {"res"}
    run_stages([_writer("a", "res")], out_dir=tmp_path, config=2, echo=lambda s: None)
    assert (tmp_path / "res" / "result.txt").read_text() == "2"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match=r"mine: this folder was not written by phenolapse run"):
        run_stages([_writer("b", "mine")], out_dir=tmp_path, config=1, echo=lambda s: None)
    assert (mine / "notes.txt").read_text() == "keep"
    assert "mine" not in read_written(tmp_path)
    (tmp_path / WRITTEN_NAME).unlink()  # a folder written before the record existed
    run_stages([_writer("a", "res")], out_dir=tmp_path, config=3, echo=lambda s: None)
    assert read_written(tmp_path) == {"res"}


def test_remove_refuses_paths_not_recorded(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    ctx = StageContext(out_dir=tmp_path, config=None)
    with pytest.raises(ConfigError, match="refusing to delete"):
        ctx.remove("x")
    assert (tmp_path / "x").is_dir()

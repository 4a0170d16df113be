"""Atomic writes: a failed writer leaves the old file (or folder) intact and no temporary files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from phenolapse.errors import OutputLockedError
from phenolapse.io_utils import (
    FORMAT_VERSION,
    atomic_path,
    atomic_write,
    exclusive_lock,
    sweep_temporaries,
    write_csv,
    write_json,
    write_parquet,
)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_write(target) as fh:
        fh.write("new")
        assert target.read_text() == "old"  # nothing visible until the writer finishes
    assert target.read_text() == "new"
    assert _names(tmp_path) == ["out.txt"]


def test_atomic_write_keeps_old_file_when_writer_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old content")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as fh:
        fh.write("half of the new content")
        raise RuntimeError("boom")
    assert target.read_text() == "old content"
    assert _names(tmp_path) == ["out.txt"]


def test_atomic_write_failure_without_old_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    with pytest.raises(ValueError), atomic_write(target, "wb") as fh:
        fh.write(b"\x00" * 10)
        raise ValueError
    assert not target.exists()
    assert _names(tmp_path / "sub") == []


def test_atomic_write_binary_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "data.bin"
    with atomic_write(target, "wb") as fh:
        fh.write(b"\x01\x02")
    assert target.read_bytes() == b"\x01\x02"
    assert _names(target.parent) == ["data.bin"]


def test_atomic_path_directory(tmp_path: Path) -> None:
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert _names(target) == ["new.txt"]
    assert _names(tmp_path) == ["store.zarr"]

    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "partial.txt").write_text("partial")
        raise OSError("disk full")
    assert _names(target) == ["new.txt"]
    assert (target / "new.txt").read_text() == "new"
    assert _names(tmp_path) == ["store.zarr"]


def test_atomic_path_nothing_written(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_path(target):
        pass
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["out.txt"]


def test_write_parquet_metadata(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    path = write_parquet(df, tmp_path / "t.parquet", kind="test", n=2)
    meta = json.loads(pq.read_schema(path).metadata[b"phenolapse"])
    assert meta == {"format_version": FORMAT_VERSION, "kind": "test", "n": 2}
    pd.testing.assert_frame_equal(pd.read_parquet(path), df, check_dtype=False)
    assert _names(tmp_path) == ["t.parquet"]


def test_write_parquet_failure_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "t.parquet"
    target.write_bytes(b"old")
    bad = pd.DataFrame({"a": [object(), 1]})  # pyarrow cannot convert
    with pytest.raises(Exception):  # noqa: B017
        write_parquet(bad, target)
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["t.parquet"]


def test_write_csv_and_json(tmp_path: Path) -> None:
    df = pd.DataFrame({"path": ["/a b.png"], "reason": ["x, y"]})
    csv = write_csv(df, tmp_path / "s.csv")
    assert csv.read_text() == 'path,reason\n/a b.png,"x, y"\n'
    js = write_json({"k": [1, 2], "p": Path("/x")}, tmp_path / "s.json")
    assert json.loads(js.read_text()) == {"k": [1, 2], "p": "/x"}
    assert _names(tmp_path) == ["s.csv", "s.json"]


def _dead_pid() -> int:
    """A process id that is not running on this machine."""
    import os

    pid = 2**22 + 4321
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_exclusive_lock_refuses_live_holder_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    import os

    lock = tmp_path / "out" / ".lock"
    with exclusive_lock(lock, label="out: output folder"):
        assert json.loads(lock.read_text()) == {"pid": os.getpid(), "host": os.uname().nodename}
        with (
            pytest.raises(OutputLockedError, match=r"out: output folder is in use by pid \d+ on"),
            exclusive_lock(lock, label="out: output folder"),
        ):
            pass
        assert lock.is_file()  # the refused second holder did not remove the first one's lock
    assert not lock.exists()
    # a lock left by a killed process of this host is taken over
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": os.uname().nodename}))
    with exclusive_lock(lock, label="out"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    # a lock of another host cannot be checked: refused, naming the file to delete
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with (
        pytest.raises(OutputLockedError, match=r"pid 1 on elsewhere.*delete .*\.lock"),
        exclusive_lock(lock, label="out"),
    ):
        pass


def test_sweep_removes_only_temporaries_of_dead_processes(tmp_path: Path) -> None:
    import os

    dead = _dead_pid()
    keep = [
        tmp_path / "profiles.parquet",
        tmp_path / ".hidden_user_file.tmp",  # not one of ours: no owner in the name
        tmp_path / f".a.csv.p{os.getpid()}-live1.tmp",  # a live writer's file
        tmp_path / "sub" / "features.zarr" / ".zattrs",
    ]
    gone = [
        tmp_path / f".profiles.parquet.p{dead}-x1y2.tmp",
        tmp_path / "sub" / f".model.pt.p{dead}-abc.tmp",
        tmp_path / "sub" / "features.zarr" / f".meta.parquet.p{dead}-q.tmp",
    ]
    for path in keep + gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    old_dir = tmp_path / f".features.zarr.old-{dead}"
    (old_dir / "chunk").mkdir(parents=True)
    removed = sweep_temporaries(tmp_path)
    assert sorted(removed) == sorted([*gone, old_dir])
    assert all(p.exists() for p in keep)
    assert not any(p.exists() for p in gone) and not old_dir.exists()


def test_atomic_temporaries_carry_the_writer_pid(tmp_path: Path) -> None:
    import os

    with atomic_path(tmp_path / "x.csv") as tmp:
        assert tmp.name.startswith(f".x.csv.p{os.getpid()}-") and tmp.name.endswith(".tmp")
        tmp.write_text("a")
        assert sweep_temporaries(tmp_path) == []  # a live writer is left alone
    assert _names(tmp_path) == ["x.csv"]


def test_a_folder_is_never_replaced_by_a_file_nor_the_reverse(tmp_path: Path) -> None:
    from phenolapse.errors import ConfigError

    results = tmp_path / "results"
    (results / "keep.csv").parent.mkdir()
    (results / "keep.csv").write_text("a\n1\n")
    with pytest.raises(ConfigError, match="is a folder; refusing to replace it with a file"):
        write_csv(pd.DataFrame({"a": [2]}), results)
    assert (results / "keep.csv").read_text() == "a\n1\n"
    single = tmp_path / "single.zarr"
    single.write_text("x")
    with (
        pytest.raises(ConfigError, match="is a file; refusing to replace it with a folder"),
        atomic_path(single) as tmp,
    ):
        tmp.mkdir()
    assert single.read_text() == "x"
    assert _names(tmp_path) == ["results", "single.zarr"]


def test_read_yaml_mapping(tmp_path: Path) -> None:
    from phenolapse.errors import ConfigError
    from phenolapse.io_utils import read_yaml_mapping

    good = tmp_path / "a.yaml"
    good.write_text("epochs: 3\ncrops: [{n: 1}]\n")
    assert read_yaml_mapping(good) == {"epochs": 3, "crops": [{"n": 1}]}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_yaml_mapping(empty) == {}
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: the lens options must be a YAML mapping, got list"):
        read_yaml_mapping(listed, what="lens options")
    tagged = tmp_path / "tag.yaml"
    tagged.write_text("x: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match=r"tag\.yaml: not valid YAML"):
        read_yaml_mapping(tagged)
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read the configuration"):
        read_yaml_mapping(tmp_path / "missing.yaml")


def test_lock_owner_waits_for_the_holder_to_write_its_record(tmp_path: Path) -> None:
    import threading

    from phenolapse.io_utils import _lock_owner

    lock = tmp_path / "out.lock"
    lock.write_text("")  # created by the holder, record not yet written
    timer = threading.Timer(
        0.1, lambda: lock.write_text(json.dumps({"pid": 4242, "host": "h1"}))
    )
    timer.start()
    try:
        assert _lock_owner(lock) == (4242, "h1")
    finally:
        timer.join()
    lock.write_text("not json")
    assert _lock_owner(lock, attempts=3, wait_s=0.001) == (-1, "")

"""``phenolapse validate``: a screen is checked before any heavy work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from phenolapse.cli import app
from phenolapse.data.validate import validate_screen


def _screen(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for well in ("B2", "B3"):
        for t in range(3):
            img = (rng.random((64, 64)) * 255).astype(np.uint8)
            Image.fromarray(img).save(root / f"HT29_Phase_{well}_1_00d{4 * t:02d}h00m.png")
    return root


def test_clean_screen_passes(tmp_path: Path) -> None:
    rep = validate_screen(_screen(tmp_path), progress=False)
    assert rep.ok
    assert rep.n_images == 6
    assert rep.wells["time_points"].tolist() == [3, 3]


@pytest.mark.bad_input("validate")
def test_problems_are_each_named(tmp_path: Path) -> None:
    root = _screen(tmp_path)
    (root / "HT29_Phase_B3_1_00d08h00m.png").unlink()  # a missing time point
    (root / "HT29_Phase_B2_1_00d00h00m.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + b"\0" * 40
    )  # corrupt
    (root / "HT29_Phase_B4_1_00d00h00m.png").write_bytes(b"")  # zero-byte
    (root / "notes_B2.png").write_bytes(b"xx")  # name does not parse
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(
        root / "HT29_Phase_B3_1_00d04h00m.png"
    )  # odd size
    rep = validate_screen(root, progress=False)
    kinds = rep.problems.groupby("kind")["where"].apply(list).to_dict()
    assert any("notes_B2.png" in w for w in kinds["unusable file"])
    assert any("HT29_Phase_B4_1_00d00h00m.png" in w for w in kinds["unusable file"])
    assert any(
        "HT29_Phase_B2_1_00d00h00m.png" in w
        for w in kinds["unusable file"] + kinds.get("unreadable image", [])
    )
    assert sorted(kinds["missing time points"]) == ["HT29 B2", "HT29 B3"]
    assert any("00d04h00m" in w for w in kinds["inconsistent image"])


@pytest.mark.bad_input("validate")
def test_cli_exit_codes(tmp_path: Path, shared_data: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(shared_data / "livecell-shsy5y"), "--no-progress"])
    assert ok.exit_code == 0, ok.output
    assert "176 images" in ok.output
    bad = tmp_path / "bad"
    bad.mkdir()
    _screen(bad)
    (bad / "HT29_Phase_B2_1_00d00h00m.png").write_bytes(b"garbage")
    res = runner.invoke(
        app, ["validate", str(bad), "--no-progress", "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 1
    assert "HT29_Phase_B2_1_00d00h00m.png" in res.output
    assert (tmp_path / "p.csv").read_text().count("\n") >= 2

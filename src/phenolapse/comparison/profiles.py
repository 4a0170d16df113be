"""Reading profile tables of several extractors and aligning them on the same wells.

Extractors are compared on exactly the same (plate, well, time point) rows: tables are joined on
their metadata, never on row position, and whatever is not shared by every table is dropped and
reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from phenolapse.artefacts import PROFILE_GROUP_KEYS, PROFILES_NAME, read_profiles
from phenolapse.errors import FeatureTableError
from phenolapse.vocabulary import PROFILE_KEYS, metadata

KEY_COLUMNS = metadata(PROFILE_GROUP_KEYS)
"""Columns that identify one profile row (one well at one time point)."""

REQUIRED_COLUMNS = list(PROFILE_KEYS)
"""Metadata every profile table must carry for the comparison tasks (those the temporal stage
needs too)."""

_CHECKED_COLUMNS = metadata(["cell_line", "drug", "concentration_um", "role"])


@dataclass
class ProfileSet:
    """One extractor's profiles: metadata rows and the matching feature matrix.

    Attributes
    ----------
    name
        Extractor name used in every output table.
    metadata
        ``Metadata_*`` columns, one row per profile.
    features
        float array ``(n_profiles, n_features)``, same row order as ``metadata``.
    feature_names
        Column names of the features.
    source
        File the profiles came from (None when built in memory).
    """

    name: str
    metadata: pd.DataFrame
    features: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    source: Path | None = None

    def __post_init__(self) -> None:
        if len(self.metadata) != len(self.features):
            raise FeatureTableError(
                f"{self._where()}: {len(self.metadata)} metadata rows but "
                f"{len(self.features)} feature rows"
            )
        if not self.feature_names:
            self.feature_names = [f"f{i}" for i in range(self.features.shape[1])]

    def _where(self) -> str:
        return f"extractor {self.name!r}" + (f" ({self.source})" if self.source else "")


def split_profiles(
    df: pd.DataFrame, *, name: str, source: Path | None = None
) -> ProfileSet:
    """Split a profiles DataFrame (docs/formats.md) into metadata and a float feature matrix."""
    meta_cols = [c for c in df.columns if str(c).startswith("Metadata_")]
    feat_cols = [c for c in df.columns if not str(c).startswith("Metadata_")]
    where = f"extractor {name!r}" + (f" ({source})" if source else "")
    missing = [c for c in REQUIRED_COLUMNS if c not in meta_cols]
    if missing:
        raise FeatureTableError(
            f"{where}: profile table lacks columns {missing}; expected the profiles format of "
            f"docs/formats.md (write it with phenolapse.embedding.make_profiles)"
        )
    if not feat_cols:
        raise FeatureTableError(f"{where}: profile table has no feature columns")
    non_numeric = [c for c in feat_cols if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise FeatureTableError(
            f"{where}: feature columns must be numeric; {non_numeric[:5]} are not (metadata "
            f"columns must start with 'Metadata_')"
        )
    meta = df[meta_cols].reset_index(drop=True).copy()
    meta["Metadata_well"] = meta["Metadata_well"].astype(str)
    meta["Metadata_plate"] = meta["Metadata_plate"].astype(str)
    meta["Metadata_time_h"] = meta["Metadata_time_h"].astype(float)
    feats = df[feat_cols].to_numpy(dtype=np.float64, copy=True)
    return ProfileSet(
        name=name, metadata=meta, features=feats, feature_names=[str(c) for c in feat_cols],
        source=source,
    )


def load_profile_set(path: str | Path, *, name: str | None = None) -> ProfileSet:
    """Load one extractor's profiles from a profile table or a ``features.zarr`` store.

    A store's ``profiles.parquet`` beside it is read when present; otherwise its per-image
    features are averaged to (plate, well, time point) profiles by
    :func:`phenolapse.embedding.load_profiles`, exactly as ``phenolapse embed`` does.
    """
    path = Path(path)
    label = name or _default_name(path)
    if not path.exists():
        raise FeatureTableError(
            f"{path}: features file not found (expected a profiles .parquet or a features.zarr "
            f"folder written by 'phenolapse embed')"
        )
    beside = path.parent / PROFILES_NAME if path.suffix == ".zarr" else None
    if beside is not None and beside.is_file():
        df = read_profiles(beside)
    else:
        from phenolapse.embedding.profiles import load_profiles

        df = load_profiles(path)
    return split_profiles(df, name=label, source=path)


def _default_name(path: Path) -> str:
    stem = path.name
    for suffix in (".parquet", ".pq", ".csv", ".zarr"):
        stem = stem.removesuffix(suffix)
    if stem in {"profiles", "features"} and path.parent.name:
        return path.parent.name
    return stem


@dataclass
class Alignment:
    """Profile sets restricted to their shared rows, in one common order.

    Attributes
    ----------
    metadata
        Shared metadata (taken from the first set), one row per kept profile.
    sets
        The profile sets, each reordered to ``metadata``'s rows.
    dropped
        Per extractor, how many of its rows were dropped (not shared, or NaN when dropping).
    """

    metadata: pd.DataFrame
    sets: list[ProfileSet]
    dropped: dict[str, int]


def _check_nan(ps: ProfileSet, nan_policy: Literal["raise", "drop"]) -> ProfileSet:
    bad = ~np.isfinite(ps.features).all(axis=1)
    if not bad.any():
        return ps
    rows = ps.metadata.loc[bad, KEY_COLUMNS].head(5)
    where = "; ".join(
        f"plate {r.Metadata_plate} well {r.Metadata_well} t={r.Metadata_time_h:g} h"
        for r in rows.itertuples()
    )
    if nan_policy == "raise":
        raise FeatureTableError(
            f"{ps._where()}: {int(bad.sum())} profile rows have NaN or infinite features "
            f"(e.g. {where}); re-run the embedding for those images or pass nan_policy='drop' "
            f"(--drop-nan) to leave them out"
        )
    keep = ~bad
    return ProfileSet(
        name=ps.name,
        metadata=ps.metadata.loc[keep].reset_index(drop=True),
        features=ps.features[keep],
        feature_names=ps.feature_names,
        source=ps.source,
    )


def align_profile_sets(
    sets: list[ProfileSet], *, nan_policy: Literal["raise", "drop"] = "raise"
) -> Alignment:
    """Restrict every profile set to the (plate, well, time point) rows all of them share.

    Rows are matched on ``Metadata_plate, Metadata_well, Metadata_time_h``; the treatment
    metadata (cell line, drug, concentration, role) of matched rows must agree.

    Raises
    ------
    FeatureTableError
        Duplicate keys within a table, NaN features (unless ``nan_policy='drop'``), duplicate
        extractor names, disagreeing metadata, or no shared rows.
    """
    if not sets:
        raise FeatureTableError("no feature tables given; pass at least one extractor's profiles")
    names = [s.name for s in sets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FeatureTableError(
            f"extractor names must be unique, {dupes} given more than once; name them "
            f"explicitly (--features NAME=PATH)"
        )
    original = {s.name: len(s.metadata) for s in sets}
    sets = [_check_nan(s, nan_policy) for s in sets]
    keyed: list[pd.DataFrame] = []
    for s in sets:
        key = s.metadata[KEY_COLUMNS].copy()
        key["Metadata_time_h"] = key["Metadata_time_h"].round(6)
        dup = key.duplicated(keep=False)
        if dup.any():
            r = s.metadata.loc[dup].iloc[0]
            raise FeatureTableError(
                f"{s._where()}: {int(dup.sum())} rows share plate, well and time point (e.g. "
                f"plate {r.Metadata_plate} well {r.Metadata_well} t={r.Metadata_time_h:g} h); "
                f"profiles must have one row per (plate, well, time point)"
            )
        key["_row"] = np.arange(len(key))
        keyed.append(key)
    shared = keyed[0][KEY_COLUMNS]
    for key in keyed[1:]:
        shared = shared.merge(key[KEY_COLUMNS], on=KEY_COLUMNS, how="inner")
    if shared.empty:
        raise FeatureTableError(
            "the feature tables share no (plate, well, time point) rows: "
            + ", ".join(f"{s._where()} has {len(s.metadata)} rows" for s in sets)
            + "; were they computed on the same screen?"
        )
    shared = shared.sort_values(KEY_COLUMNS).reset_index(drop=True)
    aligned: list[ProfileSet] = []
    dropped: dict[str, int] = {}
    reference: pd.DataFrame | None = None
    for s, key in zip(sets, keyed, strict=True):
        rows = shared.merge(key, on=KEY_COLUMNS, how="left")["_row"].to_numpy()
        meta = s.metadata.iloc[rows].reset_index(drop=True)
        if reference is None:
            reference = meta
        else:
            _check_agree(reference, meta, sets[0], s)
        dropped[s.name] = original[s.name] - len(rows)
        aligned.append(
            ProfileSet(
                name=s.name, metadata=meta, features=s.features[rows],
                feature_names=s.feature_names, source=s.source,
            )
        )
    assert reference is not None
    return Alignment(metadata=reference, sets=aligned, dropped=dropped)


def _check_agree(ref: pd.DataFrame, other: pd.DataFrame, a: ProfileSet, b: ProfileSet) -> None:
    for col in _CHECKED_COLUMNS:
        x, y = ref[col], other[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            same = np.isclose(x.to_numpy(float), y.to_numpy(float), equal_nan=True)
        else:
            same = (x.astype(str) == y.astype(str)).to_numpy()
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            r = ref.iloc[i]
            raise FeatureTableError(
                f"{a._where()} and {b._where()} disagree on {col} for plate {r.Metadata_plate} "
                f"well {r.Metadata_well} t={r.Metadata_time_h:g} h ({x.iloc[i]!r} vs "
                f"{y.iloc[i]!r}); were they embedded from the same manifest and plate map?"
            )

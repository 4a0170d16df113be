"""Growth readout: label-free confluence from the images, Incucyte exports, and GR values.

Confluence (fraction of the field covered by cells) is measured without labels from texture: cells
in phase contrast carry halos, edges and internal structure while the empty background is flat.
The texture map is the local standard deviation of intensity in a ``window`` x ``window``
neighbourhood, smoothed by a Gaussian of ``smooth_sigma`` pixels (which fills cell interiors and
removes isolated noise pixels - the morphological clean-up). A pixel is covered when its texture
exceeds a threshold: by default Otsu's threshold on the texture histogram pooled over each plate
(``plate_otsu``), because a single nearly empty or nearly confluent field has no second mode for a
per-image Otsu to find; ``otsu`` per image and a fixed number are options.

Incucyte confluence exports are read by :mod:`phenolapse.data.incucyte`
(:func:`read_incucyte_confluence` reads one).

Growth-rate inhibition (Hafner et al. 2016, Nat. Methods 13:521):

    GR(t) = 2 ** (log2(x(t) / x0) / log2(xc(t) / x0c)) - 1

with x the treated confluence (mean over replicate wells), xc the plate's negative-control
confluence at the nearest control time point, and x0, x0c their values at the time point nearest
0 h (drug addition). GR is near 1 for no effect, near 0 for cytostatic and below 0 for cytotoxic
drugs. It is undefined (NaN) while the control has not grown
(``|log2(xc/x0c)| < min_control_log2``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from phenolapse.data.incucyte import GROWTH_COLUMNS
from phenolapse.errors import FeatureTableError, ManifestError, PlateMapError
from phenolapse.temporal.config import GrowthConfig
from phenolapse.temporal.distance import nearest_time_index
from phenolapse.vocabulary import NEGATIVE_CONTROL, UNIT_KEYS

N_BINS = 1000


def texture_map(img: np.ndarray, *, window: int = 9, smooth_sigma: float = 4.0) -> np.ndarray:
    """Smoothed local standard deviation of a grayscale image (multi-channel: channel mean)."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    if arr.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    mean = ndi.uniform_filter(arr, window, mode="reflect")
    mean_sq = ndi.uniform_filter(arr * arr, window, mode="reflect")
    sd = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    return ndi.gaussian_filter(sd, smooth_sigma, truncate=3.0) if smooth_sigma > 0 else sd


def otsu_threshold(hist: np.ndarray, edges: np.ndarray) -> float:
    """Otsu's threshold of a histogram (counts ``hist`` over bin ``edges``)."""
    h = np.asarray(hist, dtype=np.float64)
    centers = (edges[1:] + edges[:-1]) / 2
    w0 = np.cumsum(h)
    w1 = w0[-1] - w0
    m0 = np.cumsum(h * centers)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2
    between = np.nan_to_num(between)
    return float(edges[int(np.argmax(between)) + 1])


def _edges(config: GrowthConfig) -> np.ndarray:
    return np.linspace(0.0, config.max_texture, N_BINS + 1)


def _histogram(tex: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.histogram(np.clip(tex, edges[0], edges[-1]), bins=edges)[0]


def _fraction_above(hist: np.ndarray, edges: np.ndarray, threshold: float) -> float:
    """Fraction of pixels whose texture exceeds ``threshold`` (bin resolution)."""
    first = int(np.searchsorted(edges, threshold, side="left"))
    return float(hist[first:].sum() / max(hist.sum(), 1))


def confluence_mask(
    img: np.ndarray, *, threshold: float, config: GrowthConfig | None = None
) -> np.ndarray:
    """Boolean mask of cell-covered pixels (texture above ``threshold``)."""
    cfg = config or GrowthConfig()
    return texture_map(img, window=cfg.window, smooth_sigma=cfg.smooth_sigma) > threshold


def confluence(img: np.ndarray, *, config: GrowthConfig | None = None) -> float:
    """Confluence of one image; ``plate_otsu`` falls back to Otsu on this image alone."""
    cfg = config or GrowthConfig()
    tex = texture_map(img, window=cfg.window, smooth_sigma=cfg.smooth_sigma)
    if isinstance(cfg.threshold, float | int) and not isinstance(cfg.threshold, bool):
        return float((tex > float(cfg.threshold)).mean())
    edges = _edges(cfg)
    hist = _histogram(tex, edges)
    return _fraction_above(hist, edges, otsu_threshold(hist, edges))


def image_confluence(
    manifest: pd.DataFrame,
    *,
    config: GrowthConfig | None = None,
    intensity_ranges: dict[str, tuple[float, float]] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Confluence of every image in a manifest (one image read per row).

    Returns the manifest with added columns ``confluence`` and ``texture_threshold``.
    """
    from phenolapse.data.imageio import read_image

    cfg = config or GrowthConfig()
    need = ["image_path", "plate", "well", "time_h"]
    missing = [c for c in need if c not in manifest.columns]
    if missing:
        raise ManifestError(f"manifest lacks column(s) {missing} needed for confluence")
    if manifest.empty:
        raise ManifestError("the manifest is empty: no images to measure confluence on")
    edges = _edges(cfg)
    hists = np.zeros((len(manifest), N_BINS), dtype=np.int64)
    plates = manifest["plate"].astype(str).to_numpy()
    for i, path in enumerate(
        tqdm(manifest["image_path"].tolist(), desc="confluence", unit="img", disable=not progress)
    ):
        rng = intensity_ranges.get(plates[i]) if intensity_ranges else None
        img = read_image(Path(path), intensity_range=rng)
        hists[i] = _histogram(
            texture_map(img, window=cfg.window, smooth_sigma=cfg.smooth_sigma), edges
        )
    thresholds = np.empty(len(manifest))
    if cfg.threshold == "plate_otsu":
        for plate in np.unique(plates):
            m = plates == plate
            thresholds[m] = otsu_threshold(hists[m].sum(axis=0), edges)
    elif cfg.threshold == "otsu":
        thresholds = np.array([otsu_threshold(h, edges) for h in hists])
    else:
        thresholds[:] = float(cfg.threshold)
    out = manifest.copy()
    out.attrs = {}
    out["confluence"] = [
        _fraction_above(h, edges, t) for h, t in zip(hists, thresholds, strict=True)
    ]
    out["texture_threshold"] = thresholds
    return out


def well_confluence(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean confluence per (plate, well, time point) with the well's metadata (GROWTH_COLUMNS)."""
    if "confluence" not in per_image.columns:
        raise ManifestError(
            "per-image table lacks a 'confluence' column (run image_confluence first)"
        )
    meta = [c for c in GROWTH_COLUMNS if c != "confluence" and c in per_image.columns]
    keys = ["plate", "well", "time_h"]
    extra = [c for c in meta if c not in keys]
    per_image = per_image.copy()
    per_image.attrs = {}
    agg = per_image.groupby(keys, sort=True, dropna=False).agg(
        confluence=("confluence", "mean"), **{c: (c, "first") for c in extra}
    )
    out = agg.reset_index()
    for c in GROWTH_COLUMNS:
        if c not in out.columns:
            out[c] = np.nan if c in ("concentration_um",) else ""
    return out[[*GROWTH_COLUMNS, *[c for c in out.columns if c not in GROWTH_COLUMNS]]]


def read_incucyte_confluence(
    path: str | Path, *, plate: str | None = None, platemap: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Read one Incucyte confluence export into the long growth table (GROWTH_COLUMNS).

    A thin shell over :func:`phenolapse.data.incucyte.read_confluence_exports` (one file; the
    plate is ``plate``, else the export's ``Label:`` line, else the file name). ``platemap``
    (columns ``well, drug, concentration_um, role`` and optionally ``plate``, ``cell_line``,
    ``time_zero`` in elapsed hours) adds the conditions and sets ``time_h = Elapsed - time_zero``.
    Errors are :class:`PlateMapError`.
    """
    from phenolapse.data.incucyte import read_confluence_exports

    try:
        return read_confluence_exports([path], platemap=platemap, plate=plate)[GROWTH_COLUMNS]
    except FeatureTableError as exc:
        raise PlateMapError(str(exc)) from exc


def _check_growth(growth: pd.DataFrame, value: str) -> None:
    missing = [
        c
        for c in ["plate", "well", "time_h", "drug", "concentration_um", "role", value]
        if c not in growth.columns
    ]
    if missing:
        raise FeatureTableError(f"growth table lacks column(s) {missing}")


def growth_rate_inhibition(
    growth: pd.DataFrame, *, value: str = "confluence", min_control_log2: float = 0.1
) -> pd.DataFrame:
    """GR(t) per (plate, drug, concentration) relative to the plate's negative controls.

    Parameters
    ----------
    growth
        Long growth table (GROWTH_COLUMNS): one row per (plate, well, time).
    value
        Column with the cell-mass proxy (confluence or cell count).
    min_control_log2
        GR is NaN where the control has grown less than this (log2 fold) since time 0.

    Returns
    -------
    DataFrame
        ``cell_line, plate, drug, concentration_um, role, time_h, control_time_h, x, x0, xc, x0c,
        relative_growth (x/x0), gr, n_wells``, one row per condition and time point.
    """
    _check_growth(growth, value)
    if "cell_line" not in growth.columns:
        growth = growth.assign(cell_line=growth["plate"])
    rows: list[pd.DataFrame] = []
    for plate, on_plate in growth.groupby("plate", sort=True):
        ctrl = on_plate[on_plate["role"] == NEGATIVE_CONTROL]
        if ctrl.empty:
            raise FeatureTableError(
                f"plate {plate}: no negative_control wells in the growth table; GR needs the "
                "vehicle control (role 'negative_control' in the plate map)"
            )
        c_mean = ctrl.groupby("time_h", sort=True)[value].mean()
        c_times = c_mean.index.to_numpy(dtype=np.float64)
        c_vals = c_mean.to_numpy(dtype=np.float64)
        x0c = c_vals[int(np.argmin(np.abs(c_times)))]
        treated = on_plate[on_plate["role"] != NEGATIVE_CONTROL]
        keys = UNIT_KEYS
        for key, grp in treated.groupby(keys, sort=True, dropna=False):
            per_t = grp.groupby("time_h", sort=True)[value].agg(["mean", "count"])
            t = per_t.index.to_numpy(dtype=np.float64)
            x = per_t["mean"].to_numpy(dtype=np.float64)
            x0 = x[int(np.argmin(np.abs(t)))]
            ci = nearest_time_index(c_times, t)
            xc = c_vals[ci]
            with np.errstate(invalid="ignore", divide="ignore"):
                ctrl_log = np.log2(xc / x0c)
                gr = 2.0 ** (np.log2(x / x0) / ctrl_log) - 1.0
            gr = np.where(np.abs(ctrl_log) < min_control_log2, np.nan, gr)
            df = pd.DataFrame(
                {
                    "time_h": t,
                    "control_time_h": c_times[ci],
                    "x": x,
                    "x0": x0,
                    "xc": xc,
                    "x0c": x0c,
                    "relative_growth": x / x0 if x0 > 0 else np.nan,
                    "gr": gr,
                    "n_wells": per_t["count"].to_numpy(),
                }
            )
            meta: dict[str, Any] = {str(k): v for k, v in zip(keys, key, strict=True)}
            rows.append(df.assign(**meta))
    if not rows:
        raise FeatureTableError("growth table has no treated wells to compute GR for")
    out = pd.concat(rows, ignore_index=True)
    cols = ["cell_line", "plate", "drug", "concentration_um", "role", "time_h", "control_time_h"]
    return out[[*cols, *[c for c in out.columns if c not in cols]]]


def interval_gr(x_start: float, x_end: float, xc_start: float, xc_end: float) -> float:
    """GR over one interval: ``2 ** (log2(x_end/x_start) / log2(xc_end/xc_start)) - 1``.

    NaN when the control did not grow over the interval or a value is not positive.
    """
    if not (x_start > 0 and x_end > 0 and xc_start > 0 and xc_end > 0):
        return float("nan")
    ctrl = float(np.log2(xc_end / xc_start))
    if not np.isfinite(ctrl) or ctrl <= 0:
        return float("nan")
    return float(2.0 ** (np.log2(x_end / x_start) / ctrl) - 1.0)


def smooth_at(x: np.ndarray, i: int) -> float:
    """Mean of ``x`` over the point ``i`` and its neighbours (robust to one noisy frame)."""
    n = len(x)
    i = i % n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(x[max(0, i - 1) : min(n, i + 2)]))


def gr_summary(gr_table: pd.DataFrame, *, end_fraction: float = 0.2) -> pd.DataFrame:
    """Per (cell line, plate, drug, concentration): growth readouts used by the annotation.

    Columns: ``gr_end`` (mean GR over the last ``end_fraction`` of the time points after 0 h),
    ``gr_mid`` (GR at the middle time point), ``gr_min``, ``gr_late`` (GR over the second half
    of the time course only - the same formula with the middle time point as the start - which
    tells growth that has stopped from growth that is merely slowed), ``confluence_start`` (x0),
    ``confluence_max`` (max after 0 h), ``confluence_end`` (mean over the last points),
    ``fall_ratio`` (end / max) and ``end_ratio`` (end / start).
    """
    keys = UNIT_KEYS
    rows = []
    for key, grp in gr_table[gr_table["time_h"] > 0].groupby(keys, sort=True, dropna=False):
        grp = grp.sort_values("time_h")
        n_end = max(1, round(len(grp) * end_fraction))
        g = grp["gr"].to_numpy(dtype=np.float64)
        x = grp["x"].to_numpy(dtype=np.float64)
        xc = grp["xc"].to_numpy(dtype=np.float64)
        x0 = float(grp["x0"].iloc[0])
        mid = len(grp) // 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            end_x = float(np.nanmean(x[-n_end:]))
            x_max = float(np.nanmax(x))
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "gr_end": float(np.nanmean(g[-n_end:])),
                    "gr_mid": float(g[mid]),
                    "gr_min": float(np.nanmin(g)) if np.isfinite(g).any() else np.nan,
                    "gr_late": interval_gr(
                        smooth_at(x, mid),
                        smooth_at(x, -1),
                        smooth_at(xc, mid),
                        smooth_at(xc, -1),
                    ),
                    "confluence_start": x0,
                    "confluence_max": x_max,
                    "confluence_end": end_x,
                    "fall_ratio": end_x / x_max if x_max > 0 else np.nan,
                    "end_ratio": end_x / x0 if x0 > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def check_growth_plates(growth: pd.DataFrame, profiles: pd.DataFrame) -> None:
    """Raise FeatureTableError when no (cell line, plate) of ``growth`` is one of the profiles'.

    Growth read from exports joins the profiles on cell line and plate; without a common pair
    every condition would silently lose its growth readout.
    """

    def pairs(df: pd.DataFrame, prefix: str) -> set[tuple[str, str]]:
        cols = [f"{prefix}cell_line", f"{prefix}plate"]
        if not set(cols) <= set(df.columns):
            return set()
        return set(zip(df[cols[0]].astype(str), df[cols[1]].astype(str), strict=True))

    grown = pairs(growth, "")
    held = pairs(profiles, "Metadata_") or pairs(profiles, "")
    if grown and held and not grown & held:
        raise FeatureTableError(
            f"the growth exports hold (cell line, plate) {sorted(grown)[:4]} but the profiles "
            f"{sorted(held)[:4]}: none match. Name each export after its plate (its 'Label:' "
            "line, else the file name) and give the cell line in the plate map"
        )

"""Rendering of phase-contrast-like frames from simulated cells.

Cells are drawn as a height ("optical path") map; a phase-contrast image is approximated by a
high-pass of that map: thick regions turn dark, the surroundings of every edge get a bright halo,
and flat spread cells stay close to the grey background. Fine camera noise and a faint line pattern
finish the frame. Drawing is done by small Numba kernels on a periodic (wrap-around) field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import ndimage

BACKGROUND = 128.0


@dataclass
class CellStamps:
    """Per-cell drawing parameters of one frame (all arrays of equal length)."""

    x: np.ndarray
    y: np.ndarray
    rx: np.ndarray
    ry: np.ndarray
    angle: np.ndarray
    height: np.ndarray
    profile: np.ndarray
    a2: np.ndarray
    p2: np.ndarray
    a3: np.ndarray
    p3: np.ndarray
    ak: np.ndarray
    k: np.ndarray
    pk: np.ndarray
    nuc_dx: np.ndarray
    nuc_dy: np.ndarray
    nuc_r: np.ndarray
    nuc_h: np.ndarray
    ring: np.ndarray
    sig_cell: np.ndarray


@dataclass
class Dots:
    """Small round features (granules, vacuoles, nucleoli, debris): position, radius, height."""

    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    h: np.ndarray
    sig: np.ndarray

    @classmethod
    def empty(cls) -> Dots:
        """No dots."""
        z = np.zeros(0)
        return cls(z, z, z, z, np.zeros(0, dtype=np.bool_))

    @classmethod
    def concat(cls, parts: list[Dots]) -> Dots:
        """Join several dot sets."""
        if not parts:
            return cls.empty()
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("x", "y", "r", "h", "sig"))
        )


@njit(cache=True, nogil=True, fastmath=True)
def _draw_cells(
    phi: np.ndarray,
    cover: np.ndarray,
    sigmask: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    rx: np.ndarray,
    ry: np.ndarray,
    angle: np.ndarray,
    height: np.ndarray,
    profile: np.ndarray,
    a2: np.ndarray,
    p2: np.ndarray,
    a3: np.ndarray,
    p3: np.ndarray,
    ak: np.ndarray,
    k: np.ndarray,
    pk: np.ndarray,
    nuc_dx: np.ndarray,
    nuc_dy: np.ndarray,
    nuc_r: np.ndarray,
    nuc_h: np.ndarray,
    ring: np.ndarray,
    sig_cell: np.ndarray,
) -> None:
    h_img, w_img = phi.shape
    for i in range(x.shape[0]):
        bmax = 1.0 + abs(a2[i]) + abs(a3[i]) + abs(ak[i])
        reach = max(rx[i], ry[i]) * bmax + 2.0
        c = math.cos(angle[i])
        s = math.sin(angle[i])
        cp2 = math.cos(p2[i])
        sp2 = math.sin(p2[i])
        cp3 = math.cos(p3[i])
        sp3 = math.sin(p3[i])
        x0 = math.floor(x[i] - reach)
        x1 = math.ceil(x[i] + reach)
        y0 = math.floor(y[i] - reach)
        y1 = math.ceil(y[i] + reach)
        for yy in range(y0, y1 + 1):
            dy = yy - y[i]
            py = yy % h_img
            for xx in range(x0, x1 + 1):
                dx = xx - x[i]
                u = (dx * c + dy * s) / rx[i]
                v = (-dx * s + dy * c) / ry[i]
                rn = math.sqrt(u * u + v * v)
                if rn >= bmax:
                    continue
                if rn > 1e-9:
                    ct = u / rn
                    st = v / rn
                else:
                    ct = 1.0
                    st = 0.0
                c2 = ct * ct - st * st
                s2 = 2.0 * ct * st
                c3 = ct * (4.0 * ct * ct - 3.0)
                s3 = st * (3.0 - 4.0 * st * st)
                b = 1.0 + a2[i] * (c2 * cp2 - s2 * sp2) + a3[i] * (c3 * cp3 - s3 * sp3)
                if ak[i] != 0.0:
                    b += ak[i] * math.cos(k[i] * math.atan2(v, u) + pk[i])
                rr = rn / b
                if rr >= 1.0:
                    continue
                px = xx % w_img
                val = height[i] * (1.0 - rr * rr) ** profile[i]
                if rr > 0.8:
                    val *= 1.0 - 0.45 * (rr - 0.8) / 0.2
                nu = (u - nuc_dx[i]) / nuc_r[i]
                nv = (v - nuc_dy[i]) / nuc_r[i]
                dn = nu * nu + nv * nv
                if dn < 1.0:
                    val += nuc_h[i] * (1.0 - 0.3 * dn)
                if ring[i] > 0.0 and rr > 0.72:
                    val -= ring[i] * (rr - 0.72) / 0.28
                    sigmask[py, px] = True
                if val > phi[py, px]:
                    phi[py, px] = val
                cover[py, px] = True
                if sig_cell[i]:
                    sigmask[py, px] = True


@njit(cache=True, nogil=True, fastmath=True)
def _draw_dots(
    field: np.ndarray,
    sigmask: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    r: np.ndarray,
    h: np.ndarray,
    sig: np.ndarray,
) -> None:
    h_img, w_img = field.shape
    for i in range(x.shape[0]):
        reach = r[i] + 1.0
        x0 = math.floor(x[i] - reach)
        x1 = math.ceil(x[i] + reach)
        y0 = math.floor(y[i] - reach)
        y1 = math.ceil(y[i] + reach)
        inv = 1.0 / (r[i] * r[i])
        for yy in range(y0, y1 + 1):
            dy = yy - y[i]
            py = yy % h_img
            for xx in range(x0, x1 + 1):
                dx = xx - x[i]
                d2 = (dx * dx + dy * dy) * inv
                if d2 >= 1.0:
                    continue
                px = xx % w_img
                field[py, px] += h[i] * (1.0 - d2)
                if sig[i]:
                    sigmask[py, px] = True


def _wrap_filter(img: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(ndimage.gaussian_filter(img, sigma, mode="wrap", truncate=3.0))


@dataclass(frozen=True)
class Optics:
    """Contrast settings of the phase-contrast approximation."""

    halo_sigma: float = 1.0
    halo_gain: float = 150.0
    edge_gain: float = 100.0
    body_gain: float = 15.0
    psf_sigma: float = 0.35
    noise_sd: float = 2.4
    stripe_amp: float = 0.8


def render_frame(
    cells: CellStamps,
    dots: Dots,
    debris: Dots,
    *,
    size: int,
    texture: float,
    rng: np.random.Generator,
    optics: Optics | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one frame.

    Returns
    -------
    image : uint8 (size, size) phase-contrast-like frame
    signature : bool (size, size), pixels where the drug's morphological signature was drawn
    cover : bool (size, size), pixels covered by cells
    """
    opt = optics or Optics()
    phi = np.zeros((size, size), dtype=np.float32)
    cover = np.zeros((size, size), dtype=np.bool_)
    sigmask = np.zeros((size, size), dtype=np.bool_)
    if cells.x.size:
        _draw_cells(
            phi, cover, sigmask, cells.x, cells.y, cells.rx, cells.ry, cells.angle,
            cells.height, cells.profile, cells.a2, cells.p2, cells.a3, cells.p3, cells.ak,
            cells.k, cells.pk, cells.nuc_dx, cells.nuc_dy, cells.nuc_r, cells.nuc_h,
            cells.ring, cells.sig_cell,
        )  # fmt: skip
    if dots.x.size:
        _draw_dots(phi, sigmask, dots.x, dots.y, dots.r, dots.h, dots.sig)
    if texture > 0 and cells.x.size:
        grain = _wrap_filter(rng.standard_normal((size, size), dtype=np.float32), 0.75)
        grain *= np.float32(texture * 1.1)
        phi += grain * cover
    sharp = _wrap_filter(phi, opt.psf_sigma)
    wide = _wrap_filter(phi, float(np.hypot(opt.psf_sigma, opt.halo_sigma)))
    img = (BACKGROUND + opt.halo_gain * (wide - sharp) - opt.body_gain * sharp).astype(np.float32)
    if opt.edge_gain:
        gy, gx = np.gradient(sharp)
        img += np.float32(opt.edge_gain) * np.sqrt(gx * gx + gy * gy)
    if debris.x.size:
        spots = np.zeros((size, size), dtype=np.float32)
        _draw_dots(spots, np.zeros((size, size), dtype=np.bool_), debris.x, debris.y,
                   debris.r, debris.h, debris.sig)  # fmt: skip
        img += _wrap_filter(spots, 0.5)
    rows = np.arange(size, dtype=np.float32)
    img += np.float32(opt.stripe_amp) * np.sin(rows * 2.1 + rng.uniform(0, 2 * np.pi))[:, None]
    noise = rng.standard_normal((size, size), dtype=np.float32)
    noise *= np.float32(opt.noise_sd)
    img += noise
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out, sigmask, cover

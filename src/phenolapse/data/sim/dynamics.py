"""Cell-population dynamics of one simulated field of view over the time course.

An agent model on a periodic field: cells divide at a density-limited (logistic) rate, move by a
random walk, and, under a drug, stop dividing, enlarge, round up, die and detach (leaving debris)
as their condition says. Each frame turns the cells into drawing stamps for :mod:`.render`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from phenolapse.data.sim.design import CellLine, Condition, carrying_density
from phenolapse.data.sim.render import CellStamps, Dots, Optics, render_frame

DIE_H = 6.0
DEBRIS_LIFE_H = 20.0
MITOSIS_H = 1.5
BASE_DEATH = 0.002
OVERLAP = 0.8
_CELL_FIELDS = ("x", "y", "r", "asp", "ang", "a2", "p2", "a3", "p3", "ndx", "ndy", "sig_u",
                "dying", "born")  # fmt: skip


@dataclass
class Frame:
    """One rendered frame and its true state."""

    elapsed_h: float
    time_h: float
    image: np.ndarray
    signature: np.ndarray
    n_cells: int
    coverage: float


class _Population:
    def __init__(self, line: CellLine, size: int, n0: int, rng: np.random.Generator, t0: float):
        self.line = line
        self.size = size
        self.rng = rng
        cells = self._new(n0, t0 - 10.0)
        n_clusters = max(1, n0 // 2)
        centres = rng.uniform(0, size, size=(n_clusters, 2))
        pick = rng.integers(n_clusters, size=n0)
        spread = 1.8 * line.radius * line.clonality
        cells["x"] = (centres[pick, 0] + rng.normal(0, spread, n0)) % size
        cells["y"] = (centres[pick, 1] + rng.normal(0, spread, n0)) % size
        self.c = cells
        self.debris = np.zeros((0, 4))  # x, y, radius, expiry time
        self.size_m = 1.0

    def _new(self, n: int, born: float) -> dict[str, np.ndarray]:
        rng, line = self.rng, self.line
        return {
            "x": rng.uniform(0, self.size, n),
            "y": rng.uniform(0, self.size, n),
            "r": line.radius * np.exp(rng.normal(0, 0.13, n)),
            "asp": 1.0 + (line.aspect - 1.0) * np.exp(rng.normal(0, 0.35, n)),
            "ang": rng.uniform(0, np.pi, n),
            "a2": line.irregularity * rng.uniform(0.3, 1.2, n),
            "p2": rng.uniform(0, 2 * np.pi, n),
            "a3": line.irregularity * rng.uniform(0.2, 1.0, n),
            "p3": rng.uniform(0, 2 * np.pi, n),
            "ndx": rng.uniform(-0.25, 0.25, n),
            "ndy": rng.uniform(-0.2, 0.2, n),
            "sig_u": rng.uniform(0, 1, n),
            "dying": np.full(n, -1.0),
            "born": np.full(n, born),
        }

    def density(self) -> float:
        c = self.c
        return float(np.sum(np.pi * (c["r"] * self.size_m) ** 2) / self.size**2)

    def step(self, t: float, dt: float, cond: Condition) -> None:
        rng, c, line = self.rng, self.c, self.line
        tau = t - cond.onset_h
        self.size_m = 1.0 + (cond.size_factor - 1.0) * (
            1.0 - math.exp(-tau / 10.0) if tau > 0 else 0.0
        )
        alive = c["dying"] < 0
        # division: logistic in covered area, scaled by the drug's growth factor after onset
        g = cond.growth_factor if t >= cond.onset_h else 1.0
        crowd = max(0.0, 1.0 - self.density() / carrying_density())
        p_div = cond.growth_rate * g * crowd * dt
        divide = alive & (rng.random(alive.size) < p_div) & (t - c["born"] > MITOSIS_H)
        # death: background plus the drug's death rate after its death onset
        d = BASE_DEATH + (cond.death_rate if t >= cond.death_onset_h else 0.0)
        die = alive & ~divide & (rng.random(alive.size) < d * dt)
        c["dying"][die] = 0.0
        c["dying"][~alive] += dt
        # motion of live cells
        step = line.motility * math.sqrt(dt)
        n_alive = int(alive.sum())
        c["x"][alive] = (c["x"][alive] + rng.normal(0, step, n_alive)) % self.size
        c["y"][alive] = (c["y"][alive] + rng.normal(0, step, n_alive)) % self.size
        if divide.any():
            self._divide(np.flatnonzero(divide), t)
        self._repel()
        gone = self.c["dying"] >= DIE_H
        if gone.any():
            self._detach(gone, t)
        if self.debris.shape[0]:
            self.debris = self.debris[self.debris[:, 3] > t]
            self.debris[:, :2] = (
                self.debris[:, :2] + rng.normal(0, 0.4, (len(self.debris), 2))
            ) % self.size

    def _repel(self) -> None:
        """Push overlapping cells apart (contact inhibition), so a confluent field tiles."""
        c = self.c
        n = c["x"].size
        if n < 2:
            return
        pos = np.stack([c["x"], c["y"]], 1) % self.size
        reach = 2.0 * OVERLAP * float(c["r"].max()) * self.size_m
        pairs = cKDTree(pos, boxsize=self.size).query_pairs(reach, output_type="ndarray")
        if not len(pairs):
            return
        i, j = pairs[:, 0], pairs[:, 1]
        delta = pos[j] - pos[i]
        delta -= self.size * np.rint(delta / self.size)
        dist = np.sqrt((delta**2).sum(1)) + 1e-6
        target = OVERLAP * (c["r"][i] + c["r"][j]) * self.size_m
        push = np.clip(target - dist, 0.0, None) * 0.35 / dist
        keep = push > 0
        if not keep.any():
            return
        i, j, move = i[keep], j[keep], delta[keep] * push[keep, None]
        mobile = (c["dying"] < 0).astype(float)
        shift = np.zeros_like(pos)
        np.add.at(shift, i, -move * mobile[i, None])
        np.add.at(shift, j, move * mobile[j, None])
        c["x"] = (c["x"] + shift[:, 0]) % self.size
        c["y"] = (c["y"] + shift[:, 1]) % self.size

    def _divide(self, idx: np.ndarray, t: float) -> None:
        rng, c = self.rng, self.c
        n = idx.size
        kids = self._new(n, t)
        theta = rng.uniform(0, 2 * np.pi, n)
        dist = c["r"][idx] * (0.9 + 0.5 * self.line.clonality)
        kids["x"] = (c["x"][idx] + np.cos(theta) * dist) % self.size
        kids["y"] = (c["y"][idx] + np.sin(theta) * dist) % self.size
        keep = rng.random(n) < 0.7
        kids["sig_u"] = np.where(keep, c["sig_u"][idx], kids["sig_u"])
        kids["r"] = c["r"][idx] * np.exp(rng.normal(0, 0.06, n))
        c["x"][idx] = (c["x"][idx] - np.cos(theta) * 0.3 * c["r"][idx]) % self.size
        c["y"][idx] = (c["y"][idx] - np.sin(theta) * 0.3 * c["r"][idx]) % self.size
        c["born"][idx] = t
        self.c = {k: np.concatenate([c[k], kids[k]]) for k in _CELL_FIELDS}

    def _detach(self, gone: np.ndarray, t: float) -> None:
        rng, c = self.rng, self.c
        xs, ys, rs = c["x"][gone], c["y"][gone], c["r"][gone]
        k = 2
        bx = np.repeat(xs, k) + rng.normal(0, 1, xs.size * k) * np.repeat(rs, k) * 0.6
        by = np.repeat(ys, k) + rng.normal(0, 1, ys.size * k) * np.repeat(rs, k) * 0.6
        br = rng.uniform(0.9, 1.8, xs.size * k)
        life = t + rng.uniform(0.5, 1.5, xs.size * k) * DEBRIS_LIFE_H
        self.debris = np.concatenate(
            [self.debris, np.stack([bx % self.size, by % self.size, br, life], 1)]
        )
        self.c = {key: v[~gone] for key, v in c.items()}

    def stamps(self, t: float, cond: Condition) -> tuple[CellStamps, Dots, Dots]:
        rng, c, line = self.rng, self.c, self.line
        n = c["x"].size
        tau = t - cond.onset_h
        ramp = 1.0 - math.exp(-tau / 10.0) if tau > 0 else 0.0
        size_m = 1.0 + (cond.size_factor - 1.0) * ramp
        round_alive = cond.rounding * ramp
        mitotic = np.clip(1.0 - (t - c["born"]) / MITOSIS_H, 0.0, 1.0) * 0.75
        rounding = np.maximum(round_alive, mitotic)
        dying = c["dying"] >= 0
        f_die = np.clip(c["dying"] / DIE_H, 0.0, 1.0)
        rounding = np.where(dying, np.maximum(rounding, 0.6 + 0.4 * f_die), rounding)
        shrink = np.where(dying, 1.0 - 0.45 * f_die, 1.0) * (1.0 - 0.3 * mitotic)
        asp = 1.0 + (c["asp"] - 1.0) * (1.0 - rounding)
        ang = c["ang"].copy()
        ak = np.zeros(n)
        k = np.full(n, 7.0)
        pk = rng.uniform(0, 2 * np.pi, n)
        ring = np.zeros(n)
        sig_cell = np.zeros(n, dtype=np.bool_)
        nuc_h = np.full(n, 0.3)
        dots: list[Dots] = []
        s = cond.signature_strength * ramp
        has = (c["sig_u"] < s) & ~dying if s > 0 else np.zeros(n, dtype=np.bool_)
        sig, param = cond.signature, cond.signature_param
        r_eff = c["r"] * size_m * shrink
        height = line.thickness * (1.0 + 1.2 * rounding) / size_m**2
        if has.any():
            if sig == "elongated":
                asp = np.where(has, asp * (1.0 + (1.4 + 1.2 * param) * s), asp)
                sig_cell |= has
            elif sig == "spiky":
                ak = np.where(has, (0.16 + 0.12 * param) * s, 0.0)
                k = np.full(n, float(6 + int(4 * param)))
                sig_cell |= has
            elif sig == "bright_ring":
                ring = np.where(has, (0.5 + 0.4 * param) * s * height, 0.0)
            elif sig == "dark_nucleus":
                idx = np.flatnonzero(has)
                rad = 0.42 * r_eff[idx]
                depth = np.full(idx.size, (0.7 + 0.5 * param) * s)
                dots.append(Dots(c["x"][idx], c["y"][idx], rad, depth, has[idx]))
            elif sig in ("granular", "vacuoles"):
                idx = np.flatnonzero(has)
                per = 8 + int(8 * param) if sig == "granular" else 2 + int(3 * param)
                j = np.repeat(idx, per)
                rho = 0.65 * np.sqrt(rng.uniform(0, 1, j.size)) * r_eff[j]
                th = rng.uniform(0, 2 * np.pi, j.size)
                if sig == "granular":
                    rad = rng.uniform(1.0, 1.6, j.size)
                    h = np.full(j.size, 1.2 * s)
                else:
                    rad = rng.uniform(1.6, 2.6 + param, j.size)
                    h = np.full(j.size, -0.7 * s)
                dots.append(Dots(c["x"][j] + rho * np.cos(th), c["y"][j] + rho * np.sin(th), rad, h,
                                 np.ones(j.size, dtype=np.bool_)))  # fmt: skip
        # nucleoli: a couple of tiny dark dots in every live cell
        live = np.flatnonzero(~dying)
        j = np.repeat(live, 2)
        rho = 0.3 * np.sqrt(rng.uniform(0, 1, j.size)) * r_eff[j]
        th = rng.uniform(0, 2 * np.pi, j.size)
        dots.append(Dots(c["x"][j] + rho * np.cos(th), c["y"][j] + rho * np.sin(th),
                         rng.uniform(0.8, 1.3, j.size), np.full(j.size, 0.9),
                         np.zeros(j.size, dtype=np.bool_)))  # fmt: skip
        # cytoplasmic granules: a few small dark dots around the nucleus
        j = np.repeat(live, 4)
        rho = rng.uniform(0.35, 0.75, j.size) * r_eff[j]
        th = rng.uniform(0, 2 * np.pi, j.size)
        dots.append(Dots(c["x"][j] + rho * np.cos(th), c["y"][j] + rho * np.sin(th),
                         rng.uniform(0.7, 1.1, j.size), np.full(j.size, 0.7),
                         np.zeros(j.size, dtype=np.bool_)))  # fmt: skip
        sq = np.sqrt(asp)
        profile = line.flatness * (1.0 - rounding) + 0.55 * rounding
        harm = 1.0 - rounding
        cells = CellStamps(
            x=c["x"], y=c["y"], rx=r_eff * sq, ry=r_eff / sq, angle=ang, height=height,
            profile=profile, a2=c["a2"] * harm, p2=c["p2"], a3=c["a3"] * harm, p3=c["p3"],
            ak=ak, k=k, pk=pk, nuc_dx=c["ndx"], nuc_dy=c["ndy"], nuc_r=np.full(n, 0.4),
            nuc_h=nuc_h, ring=ring, sig_cell=sig_cell,
        )  # fmt: skip
        deb = self.debris
        debris = Dots(deb[:, 0], deb[:, 1], deb[:, 2] + 0.6, np.full(len(deb), 70.0),
                      np.zeros(len(deb), dtype=np.bool_))  # fmt: skip
        return cells, Dots.concat(dots), debris

    def n_attached(self) -> int:
        return int(self.c["x"].size)


def simulate_field(
    line: CellLine,
    cond: Condition,
    *,
    elapsed_h: list[float],
    time_zero_h: float,
    initial_coverage: float,
    size: int,
    seed: np.random.SeedSequence,
    cell_size: float = 1.0,
    noise_sd: float | None = None,
) -> Iterator[Frame]:
    """Simulate one field of view of one well and yield its frames in time order.

    ``cell_size`` multiplies the cell line's radius; ``noise_sd`` replaces the camera noise of
    :class:`Optics` (grey levels) when given.
    """
    rng = np.random.default_rng(seed)
    optics = Optics() if noise_sd is None else Optics(noise_sd=noise_sd)
    scale = size / 256.0 * cell_size
    scaled = CellLine(
        **{**line.__dict__, "radius": line.radius * scale, "motility": line.motility * scale}
    )
    rho0 = -math.log(1.0 - initial_coverage) * float(np.exp(rng.normal(0, 0.08)))
    n0 = max(1, round(rho0 * size**2 / (math.pi * scaled.radius**2 * math.exp(2 * 0.13**2))))
    t = elapsed_h[0] - time_zero_h
    pop = _Population(scaled, size, n0, rng, t)
    texture = line.texture
    for i, el in enumerate(elapsed_h):
        target = el - time_zero_h
        if i:
            gap = target - t
            n_sub = max(1, math.ceil(gap / 2.0))
            for _ in range(n_sub):
                pop.step(t, gap / n_sub, cond)
                t += gap / n_sub
        t = target
        cells, dots, debris = pop.stamps(t, cond)
        img, sig, cover = render_frame(
            cells, dots, debris, size=size, texture=texture, rng=rng, optics=optics
        )
        yield Frame(el, t, img, sig, pop.n_attached(), float(cover.mean()))

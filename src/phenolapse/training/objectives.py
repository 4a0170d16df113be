"""Self-supervised objectives on two views of each image, in plain torch.

- ``simclr``: NT-Xent (Chen et al. 2020): each view must pick its partner out of the batch's
  ``2B - 1`` other views by cosine similarity at a temperature.
- ``vicreg``: variance-invariance-covariance (Bardes et al. 2022): the partners' embeddings agree,
  every dimension keeps a standard deviation of at least 1 over the batch, and dimensions are
  decorrelated; no negatives.
- ``dino``: self-distillation (Caron et al. 2021): a student matches the sharpened, centred output
  distribution of a teacher whose weights are an exponential moving average of the student's.

Each objective owns its projection head; :meth:`Objective.loss` takes the encoder features of the
two views, ``(B, D)`` each, and returns a scalar.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ObjectiveName = Literal["reconstruction", "simclr", "vicreg", "dino"]
SSL_OBJECTIVES = ("simclr", "vicreg", "dino")


def projector(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    """Two-layer MLP head with batch norm, as in SimCLR/VICReg."""
    return nn.Sequential(
        nn.Linear(dim_in, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim_out),
    )


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, *, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent loss of partner embeddings ``z1[i]``/``z2[i]`` against all other views of the batch."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def vicreg(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
) -> torch.Tensor:
    """VICReg loss: invariance (MSE), variance hinge at std 1, off-diagonal covariance."""
    z1, z2 = z1.float(), z2.float()
    inv = F.mse_loss(z1, z2)
    n, d = z1.shape

    def var_cov(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = z - z.mean(dim=0)
        std = torch.sqrt(z.var(dim=0) + 1e-4)
        cov = (z.T @ z) / max(n - 1, 1)
        off = cov - torch.diag(torch.diag(cov))
        return F.relu(1.0 - std).mean(), off.pow(2).sum() / d

    v1, c1 = var_cov(z1)
    v2, c2 = var_cov(z2)
    return sim_weight * inv + var_weight * (v1 + v2) / 2 + cov_weight * (c1 + c2)


class Objective(nn.Module):
    """Projection head and loss of one self-supervised objective."""

    name: str = "objective"

    def loss(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """Scalar loss of the encoder features of two views of the same images."""
        raise NotImplementedError

    def after_step(self, encoder: nn.Module) -> None:
        """Hook run after each optimizer step (the DINO teacher's moving average)."""


class SimCLR(Objective):
    """NT-Xent on a projection of the features."""

    name = "simclr"

    def __init__(self, dim_in: int, *, hidden: int = 512, dim_out: int = 128,
                 temperature: float = 0.2) -> None:
        super().__init__()
        self.head = projector(dim_in, hidden, dim_out)
        self.temperature = temperature

    def loss(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """NT-Xent of the two views' projections."""
        return nt_xent(self.head(f1), self.head(f2), temperature=self.temperature)


class VICReg(Objective):
    """VICReg on an expanded projection of the features."""

    name = "vicreg"

    def __init__(self, dim_in: int, *, hidden: int = 512, dim_out: int = 512) -> None:
        super().__init__()
        self.head = projector(dim_in, hidden, dim_out)

    def loss(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """VICReg of the two views' projections."""
        return vicreg(self.head(f1), self.head(f2))


class DINO(Objective):
    """Self-distillation with a momentum teacher (encoder and head), centring and sharpening.

    The teacher is created lazily from the encoder at the first step (:meth:`bind`); its
    weights follow the student's with momentum ``momentum``; the teacher's outputs are centred by
    a running mean and sharpened by ``teacher_temperature``.
    """

    name = "dino"

    def __init__(self, dim_in: int, *, hidden: int = 512, n_prototypes: int = 256,
                 student_temperature: float = 0.1, teacher_temperature: float = 0.04,
                 momentum: float = 0.99, center_momentum: float = 0.9) -> None:
        super().__init__()
        self.head = projector(dim_in, hidden, n_prototypes)
        self.teacher_head = copy.deepcopy(self.head).requires_grad_(False)
        self.teacher_encoder: nn.Module | None = None
        self.register_buffer("center", torch.zeros(1, n_prototypes))
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.momentum = momentum
        self.center_momentum = center_momentum
        self._views: tuple[torch.Tensor, torch.Tensor] | None = None

    def bind(self, encoder: nn.Module) -> None:
        """Create the teacher encoder as a frozen copy of ``encoder`` (once)."""
        if self.teacher_encoder is None:
            self.teacher_encoder = copy.deepcopy(encoder).requires_grad_(False)

    def set_views(self, x1: torch.Tensor, x2: torch.Tensor) -> None:
        """The two views' images, which the teacher encodes itself."""
        self._views = (x1, x2)

    def _teacher(self, x: torch.Tensor) -> torch.Tensor:
        assert self.teacher_encoder is not None
        with torch.no_grad():
            out: torch.Tensor = self.teacher_head(self.teacher_encoder(x)).float()
        return out

    def loss(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each student view against the teacher on the other view."""
        if self._views is None or self.teacher_encoder is None:
            raise RuntimeError("DINO needs bind(encoder) and set_views(x1, x2) before loss()")
        t1, t2 = (self._teacher(x) for x in self._views)
        s1 = self.head(f1).float() / self.student_temperature
        s2 = self.head(f2).float() / self.student_temperature
        center: torch.Tensor = self.center  # type: ignore[assignment]

        def ce(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            p = F.softmax((t - center) / self.teacher_temperature, dim=1)
            return -(p * F.log_softmax(s, dim=1)).sum(dim=1).mean()

        loss = (ce(t1, s2) + ce(t2, s1)) / 2
        with torch.no_grad():
            batch_center = torch.cat([t1, t2]).mean(dim=0, keepdim=True)
            center.mul_(self.center_momentum).add_(batch_center * (1 - self.center_momentum))
        return loss

    @torch.no_grad()
    def after_step(self, encoder: nn.Module) -> None:
        """Move the teacher's weights towards the student's (exponential moving average)."""
        assert self.teacher_encoder is not None
        m = self.momentum
        pairs = [(self.teacher_encoder, encoder), (self.teacher_head, self.head)]
        for teacher, student in pairs:
            for pt, ps in zip(teacher.parameters(), student.parameters(), strict=True):
                pt.mul_(m).add_(ps.detach(), alpha=1 - m)
            for bt, bs in zip(teacher.buffers(), student.buffers(), strict=True):
                bt.copy_(bs)


def build_objective(name: str, dim_in: int, *, temperature: float = 0.2) -> Objective:
    """The objective ``name`` (one of :data:`SSL_OBJECTIVES`) for features of length ``dim_in``."""
    if name == "simclr":
        return SimCLR(dim_in, temperature=temperature)
    if name == "vicreg":
        return VICReg(dim_in)
    if name == "dino":
        return DINO(dim_in)
    raise ValueError(f"unknown self-supervised objective {name!r}; known: {SSL_OBJECTIVES}")

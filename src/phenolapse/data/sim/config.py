"""Configuration of the screen simulator: one pydantic model shared by the CLI, YAML and Python."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phenolapse.errors import ConfigError
from phenolapse.vocabulary import EFFECTS

PresetName = Literal["tiny", "small", "paper"]
EFFECT_CLASSES = EFFECTS
SIGNATURES = ("elongated", "granular", "dark_nucleus", "bright_ring", "vacuoles", "spiky")

_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "n_cell_lines": 1,
        "n_drugs": 6,
        "concentrations_um": [0.1, 1.0, 10.0],
        "n_replicates": 2,
        "n_dmso_wells": 4,
        "n_pbs_wells": 2,
        "n_timepoints": 10,
        "time_step_h": 8.0,
        "time_zero_h": 4.0,
    },
    "small": {
        "n_cell_lines": 3,
        "n_drugs": 8,
        "concentrations_um": [0.01, 0.1, 1.0, 10.0],
        "n_replicates": 3,
        "n_dmso_wells": 8,
        "n_pbs_wells": 4,
        "n_timepoints": 16,
        "time_step_h": 6.0,
        "time_zero_h": 6.0,
    },
    "paper": {
        "n_cell_lines": 21,
        "n_drugs": 31,
        "concentrations_um": [0.001, 0.01, 0.1, 1.0, 10.0],
        "n_replicates": 4,
        "n_dmso_wells": 24,
        "n_pbs_wells": 8,
        "plates_per_cell_line": 2,
        "n_timepoints": 51,
        "time_step_h": 2.0,
        "time_zero_h": 4.0,
    },
}


class SimulationConfig(BaseModel):
    """Design and rendering options of a simulated Incucyte screen.

    Build one from a preset with :meth:`SimulationConfig.preset` and override single fields;
    unknown fields are rejected. ``scale`` shrinks (or grows) a design without changing its time
    course: it multiplies the numbers of cell lines, drugs and control wells.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    seed: int = Field(0, ge=0, description="Seed of every random draw; same seed, same screen.")
    n_cell_lines: int = Field(1, ge=1, le=99)
    n_drugs: int = Field(6, ge=1, le=999)
    concentrations_um: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0], min_length=1)
    n_replicates: int = Field(2, ge=1)
    n_dmso_wells: int = Field(4, ge=1, description="DMSO (negative control) wells per plate.")
    n_pbs_wells: int = Field(2, ge=0, description="PBS (untreated) wells per plate.")
    plates_per_cell_line: int | None = Field(
        None, ge=1, description="Plates per cell line; None: as few as the 384-well layout allows."
    )
    n_fields: int = Field(1, ge=1, le=99, description="Fields of view imaged per well.")
    image_size: int = Field(
        256, ge=64, le=2048, description="Frame width and height in pixels (cells scale with it)."
    )
    n_timepoints: int = Field(10, ge=2)
    time_step_h: float = Field(8.0, gt=0, le=48)
    time_zero_h: float = Field(
        4.0,
        ge=0,
        description="Elapsed imaging hours at drug addition (frames before it have t < 0).",
    )
    scale: float = Field(1.0, gt=0, le=10)
    image_format: Literal["png", "jpg", "tif"] = "png"
    no_effect_fraction: float = Field(
        0.25, ge=0, le=1, description="Share of drugs without effect."
    )
    initial_coverage: float = Field(
        0.12, gt=0.01, lt=0.6, description="Coverage at the first frame."
    )
    final_coverage: float = Field(
        0.8, gt=0.1, lt=0.95, description="Control-well coverage aimed for at the last frame."
    )
    cell_size: float = Field(
        1.0,
        ge=0.5,
        le=2.0,
        description="Multiplies every cell line's cell radius (1: as designed).",
    )
    noise_sd: float = Field(
        2.4, ge=0, le=30, description="Camera noise, standard deviation in grey levels (of 255)."
    )
    workers: int = Field(0, ge=0, description="Worker processes; 0 chooses from the screen size.")
    progress: bool = True

    @field_validator("concentrations_um")
    @classmethod
    def _check_concentrations(cls, v: list[float]) -> list[float]:
        if any((not math.isfinite(c)) or c <= 0 for c in v):
            raise ValueError("concentrations must be positive finite numbers (micromolar)")
        if len(set(v)) != len(v):
            raise ValueError("concentrations must be distinct")
        return sorted(v)

    @model_validator(mode="after")
    def _check_time(self) -> SimulationConfig:
        if self.time_zero_h > (self.n_timepoints - 2) * self.time_step_h:
            raise ValueError(
                "time_zero_h leaves fewer than two frames after drug addition; "
                "lower time_zero_h or add time points"
            )
        return self

    @classmethod
    def preset(cls, name: str = "tiny", **overrides: Any) -> SimulationConfig:
        """Return the configuration of preset ``name`` (tiny, small, paper) with ``overrides``.

        Raises
        ------
        ConfigError
            For an unknown preset, an unknown option or an invalid value.
        """
        if name not in _PRESETS:
            raise ConfigError(
                f"unknown simulator preset {name!r}; choose one of {sorted(_PRESETS)}"
            )
        values = {**_PRESETS[name], **overrides}
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(f"simulator preset {name!r}: invalid options:\n{exc}") from exc

    # derived design sizes -------------------------------------------------------------------
    @property
    def effective_n_cell_lines(self) -> int:
        """Number of cell lines after ``scale``."""
        return max(1, round(self.n_cell_lines * self.scale))

    @property
    def effective_n_drugs(self) -> int:
        """Number of drugs after ``scale`` (at least 4 when the design had 4, one per class)."""
        return max(min(4, self.n_drugs), round(self.n_drugs * self.scale))

    @property
    def effective_n_dmso_wells(self) -> int:
        """DMSO wells per plate after ``scale``."""
        return max(min(2, self.n_dmso_wells), round(self.n_dmso_wells * min(self.scale, 1.0)))

    @property
    def effective_n_pbs_wells(self) -> int:
        """PBS wells per plate after ``scale``."""
        if self.n_pbs_wells == 0:
            return 0
        return max(1, round(self.n_pbs_wells * min(self.scale, 1.0)))

    @property
    def elapsed_hours(self) -> list[float]:
        """Elapsed imaging time of every frame, in hours."""
        return [i * self.time_step_h for i in range(self.n_timepoints)]

"""The words every stage shares: well roles, effect labels and the keys of a condition.

One place for the values written into and read from the tables of ``docs/formats.md``, so that a
stage never spells ``"negative_control"`` or ``"cytotoxic"`` on its own. Plain constants, no
imports beyond the standard library: every layer (data ... cli) may import this module.
"""

from __future__ import annotations

from typing import Literal

# ------------------------------------------------------------------------------------- well roles

TREATMENT = "treatment"
"""A well treated with a drug at a concentration."""
NEGATIVE_CONTROL = "negative_control"
"""A vehicle well (e.g. DMSO): the reference every distance and growth rate is measured against."""
POSITIVE_CONTROL = "positive_control"
"""A well treated with a compound of known effect."""
UNTREATED = "untreated"
"""A well without drug or vehicle (e.g. PBS, medium)."""
UNKNOWN = "unknown"
"""A well without plate-map entry."""

ROLES = (TREATMENT, NEGATIVE_CONTROL, POSITIVE_CONTROL, UNTREATED, UNKNOWN)
"""Every role a plate map or manifest may hold."""
CONTROL_ROLES = (NEGATIVE_CONTROL, POSITIVE_CONTROL, UNTREATED)
"""Roles of wells without a test drug."""
TREATED_ROLES = (TREATMENT, POSITIVE_CONTROL)
"""Roles of wells that received a compound at a positive concentration."""
DISTANCE_ROLES = (TREATMENT, UNTREATED, POSITIVE_CONTROL)
"""Roles measured against the negative control (each gets its own curve)."""

# ---------------------------------------------------------------------------------- effect labels

NO_EFFECT = "no_effect"
CYTOSTATIC = "cytostatic"
CYTOTOXIC = "cytotoxic"
MIXED = "mixed"
EFFECTS = (NO_EFFECT, CYTOSTATIC, CYTOTOXIC, MIXED)
"""Effect labels, in the order tables and figures list them."""
Effect = Literal["no_effect", "cytostatic", "cytotoxic", "mixed"]
"""Type of an effect label (the values of :data:`EFFECTS`)."""

# ------------------------------------------------------------------------------------ table keys

METADATA_PREFIX = "Metadata_"
"""Prefix of the metadata columns of profile tables and the temporal stage's Parquet tables."""

UNIT_KEYS = ["cell_line", "plate", "drug", "concentration_um", "role"]
"""One condition (unit): a drug at a concentration on a plate of a cell line."""
OBSERVATION_KEYS = ["cell_line", "plate", "well", "time_h", "drug", "concentration_um", "role"]
"""One well at one time point with its condition: what every per-well table carries."""


def metadata(columns: list[str] | tuple[str, ...]) -> list[str]:
    """The column names with the ``Metadata_`` prefix: ``["plate"]`` -> ``["Metadata_plate"]``."""
    return [f"{METADATA_PREFIX}{c}" for c in columns]


CONDITION_KEYS = metadata(UNIT_KEYS)
""":data:`UNIT_KEYS` as profile-table columns (``Metadata_cell_line`` ...)."""
SERIES_KEYS = CONDITION_KEYS
"""The keys of one distance series: one per condition."""
PROFILE_KEYS = metadata(OBSERVATION_KEYS)
"""Metadata every profile table must carry (``Metadata_cell_line`` ... ``Metadata_role``)."""


def strip_prefix(columns: list[str] | tuple[str, ...]) -> list[str]:
    """The column names without the ``Metadata_`` prefix."""
    return [str(c).removeprefix(METADATA_PREFIX) for c in columns]

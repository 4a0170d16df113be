"""Exceptions raised on bad input; every message names the file, row or well at fault."""

from __future__ import annotations


class PhenolapseError(Exception):
    """Base class of every error phenolapse raises on bad input or a failed stage."""


class ParseError(PhenolapseError):
    """A file name does not follow any known naming scheme."""


class PlateMapError(PhenolapseError):
    """The plate map is malformed or does not join with the images."""


class ImageReadError(PhenolapseError):
    """An image file cannot be decoded or has an unexpected shape or depth."""


class ManifestError(PhenolapseError):
    """A manifest table is empty or lacks required columns."""


class ConfigError(PhenolapseError):
    """A configuration value is invalid."""


class CheckpointError(PhenolapseError):
    """A checkpoint or weights file cannot be loaded into the requested model."""


class FeatureTableError(PhenolapseError):
    """A feature or profile table is malformed (missing metadata, NaN features, ...)."""


class OutputLockedError(PhenolapseError):
    """Another phenolapse process is writing to the same output folder."""

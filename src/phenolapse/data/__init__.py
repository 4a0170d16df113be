"""Screen data: manifests, file names, plate maps, image I/O and the simulator."""

from phenolapse.data.imageio import PreprocessConfig, load_for_model, read_image
from phenolapse.data.manifest import (
    MANIFEST_COLUMNS,
    build_manifest,
    read_manifest,
    summarize_manifest,
    validate_manifest,
    write_manifest,
)
from phenolapse.data.names import canonical_well, parse_name
from phenolapse.data.platemap import read_platemap

__all__ = [
    "MANIFEST_COLUMNS",
    "PreprocessConfig",
    "build_manifest",
    "canonical_well",
    "load_for_model",
    "parse_name",
    "read_image",
    "read_manifest",
    "read_platemap",
    "summarize_manifest",
    "validate_manifest",
    "write_manifest",
]

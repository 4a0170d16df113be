"""phenolapse: label-free live-cell drug screens from images to drug effects."""

from phenolapse.errors import PhenolapseError

__all__ = ["PhenolapseError", "__version__"]
__version__ = "0.1.0"

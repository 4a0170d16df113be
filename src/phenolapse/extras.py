"""Optional dependencies: which ``pip`` extra brings each one, and one check that names it.

The base install (``pip install phenolapse``) runs ingestion, training, embedding, the temporal
analysis, the lens without integrated gradients and the report. The rest needs an extra:

========================  ================  ==============================================
module                    extra             used by
========================  ================  ==============================================
``captum``                ``analysis``      lens integrated-gradients maps
``copairs``               ``analysis``      extractor comparison (replicate retrieval)
``umap``                  ``analysis``      extractor comparison (UMAP embedding)
``dask``, ``distributed`` ``distributed``   multi-worker embedding
========================  ================  ==============================================
"""

from __future__ import annotations

import importlib.util

from phenolapse.errors import ConfigError

EXTRAS: dict[str, str] = {
    "captum": "analysis",
    "copairs": "analysis",
    "umap": "analysis",
    "tslearn": "analysis",
    "dask": "distributed",
    "distributed": "distributed",
}


class MissingExtraError(ConfigError):
    """An optional dependency that the requested work needs is not installed."""


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(modules: list[str]) -> str:
    """The ``pip install`` command that brings ``modules``."""
    extras = sorted({EXTRAS.get(m, m) for m in modules})
    return f"pip install 'phenolapse[{','.join(extras)}]'"


def missing_extras(needs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Of ``{what: [module, ...]}``, the entries with a module that is not installed."""
    out: dict[str, list[str]] = {}
    for what, modules in needs.items():
        absent = [m for m in modules if not installed(m)]
        if absent:
            out[what] = absent
    return out


def require(needs: dict[str, list[str]], *, remedy: str = "") -> None:
    """Raise :class:`MissingExtraError` naming every option whose modules are not installed.

    Parameters
    ----------
    needs
        ``{option or task: [module, ...]}``, e.g. ``{"lens.integrated_gradients": ["captum"]}``.
    remedy
        What else the user may do (e.g. turn the option off), appended to the message.
    """
    absent = missing_extras(needs)
    if not absent:
        return
    modules = sorted({m for ms in absent.values() for m in ms})
    lines = [f"  {what} needs {', '.join(ms)}" for what, ms in absent.items()]
    raise MissingExtraError(
        "optional dependencies are not installed:\n"
        + "\n".join(lines)
        + f"\ninstall them with: {install_hint(modules)}"
        + (f"\n{remedy}" if remedy else "")
    )

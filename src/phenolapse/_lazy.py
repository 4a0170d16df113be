"""Lazy package exports: a name is imported from its module on first use.

Packages whose modules need heavy dependencies (torch, matplotlib) export their public names this
way, so that importing one torch-free module of the package stays torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    ``exports`` maps each public name to the module that defines it; ``names`` is the package's
    ``__all__``.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__


def lazy_modules(
    package: str, modules: Mapping[str, Sequence[str]], names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """:func:`lazy_exports` with the exports grouped by module.

    ``modules`` maps each module (full name) to the public names it defines; together they must be
    exactly ``names``, the package's ``__all__``.
    """
    exports = {name: module for module, defined in modules.items() for name in defined}
    if sorted(exports) != sorted(names):
        raise ValueError(f"{package}: the lazy exports and __all__ differ")
    return lazy_exports(package, exports, names)

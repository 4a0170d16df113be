"""Safe, unique file-name parts for user strings (drug and cell-line names).

A name is used as is when it is made of ASCII letters, digits and ``-`` only; any other name
becomes those characters plus a short hash of the full name, so ``AZD-1.1`` and ``AZD-1.2`` never
share a file, ``../x`` or ``a/b`` never leave their folder, and names that differ only by case
stay apart on case-insensitive file systems. Tables that map file names back to the full names
keep the link for readers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

_SAFE = re.compile(r"[A-Za-z0-9-]+")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9]+")
MAX_LEN = 40


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def slug(text: str) -> str:
    """A file-name part for ``text``: the name itself when safe, else a cleaned name plus hash."""
    text = str(text)
    if _SAFE.fullmatch(text) and len(text) <= MAX_LEN and not text.startswith("-"):
        return text
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    base = _UNSAFE_RUN.sub("-", ascii_text).strip("-")[:MAX_LEN].strip("-")
    return f"{base}-{_digest(text)}" if base else _digest(text)


def unique_slugs(names: Iterable[str]) -> dict[str, str]:
    """``{name: slug}`` for distinct ``names``, unique even when compared without case."""
    distinct = sorted({str(n) for n in names})
    out = {n: slug(n) for n in distinct}
    seen: dict[str, list[str]] = {}
    for name, s in out.items():
        seen.setdefault(s.lower(), []).append(name)
    for group in seen.values():
        if len(group) > 1:
            for name in group:
                if not out[name].endswith(_digest(name)):
                    out[name] = f"{out[name]}-{_digest(name)}"
    return out

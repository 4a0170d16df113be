"""File-name slugs of user strings: safe, unique, stable."""

from __future__ import annotations

import re

from phenolapse.report.slugs import slug, unique_slugs


def test_safe_names_are_kept_and_others_get_a_hash() -> None:
    assert slug("drug03") == "drug03"
    assert slug("AZD-1.1") == "AZD-1-1-2c016d6a"
    assert slug("AZD-1.1") != slug("AZD-1.2")
    assert slug("../../../../X").startswith("X-")
    for name in ("a/b", "../x", ".hidden", "", "µ tox", "x" * 200):
        s = slug(name)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,60}", s), (name, s)


def test_unique_even_without_case() -> None:
    names = ["drug03", "Drug03", "AZD-1.1", "AZD-1-1", "AZD 1.1", "a/b", "a-b"]
    out = unique_slugs(names)
    assert set(out) == set(names)
    assert len({s.lower() for s in out.values()}) == len(names)
    assert out["a-b"] == "a-b" and out["AZD-1-1"] == "AZD-1-1"

"""ValueSet compose filters — https://hl7.org/fhir/R4/valueset-definitions.html#ValueSet.compose.include.filter
(operators: https://hl7.org/fhir/R4/valueset-filter-operator.html).

A filter compiles to a :class:`Filter` that can both *test* one concept (for
``$validate-code``, without expanding anything) and *select* every matching concept (for
``$expand``); hierarchy operators select by walking the index instead of testing every code.
Property ``concept`` or ``code`` means the code itself, ``display`` its display; ``parent``
and ``child`` are the hierarchy; anything else is a ``CodeSystem.concept.property``.
Failure contract: NOT_SUPPORTED for an operator we do not offer, INVALID for a bad regex.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from huitong.fhir.errors import Category
from huitong.terminology._messages import error
from huitong.terminology.index import CodeSystemIndex, Concept

__all__ = ["Filter", "compile_filter", "select"]

_SELF = frozenset({"concept", "code"})
_HIERARCHY_OPS = frozenset({"is-a", "descendent-of", "generalizes"})


@dataclass(frozen=True, slots=True)
class Filter:
    test: Callable[[Concept], bool]
    # Codes the filter can only match, when it is cheap to know them (hierarchy operators).
    candidates: frozenset[str] | None = None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # a Coding property value compares by its code
        return str(value.get("code", ""))
    return str(value)


def _values(index: CodeSystemIndex, concept: Concept, prop: str) -> list[str]:
    if prop in _SELF:
        return [concept.code]
    if prop == "display":
        return [concept.display] if concept.display else []
    if prop == "parent":
        return list(index.parents_of(concept.code))
    if prop == "child":
        return list(index.children_of(concept.code))
    if prop == "inactive":
        return ["true" if concept.inactive else "false"]
    if prop == "notSelectable":
        return ["true" if concept.abstract else "false"]
    return [_as_text(v) for v in concept.property_values(prop)]


def compile_filter(index: CodeSystemIndex, raw: dict[str, Any]) -> Filter:
    """One ``compose.include.filter`` against ``index``."""
    prop = str(raw.get("property", ""))
    op = str(raw.get("op", ""))
    value = str(raw.get("value", ""))

    if op in _HIERARCHY_OPS or op == "is-not-a":
        if prop not in _SELF and prop != "parent":
            raise error(Category.NOT_SUPPORTED, "bad-filter-op", op=op, prop=prop)
        root = index.get(value)
        code = root.code if root else value
        if op == "is-a":
            chosen = {code} | index.descendants(code) if root else set()
        elif op == "descendent-of":
            chosen = index.descendants(code) if root else set()
        elif op == "generalizes":
            chosen = {code} | index.ancestors(code) if root else set()
        else:  # is-not-a
            below = ({code} | index.descendants(code)) if root else set()
            return Filter(lambda c: c.code not in below)
        frozen = frozenset(chosen)
        return Filter(lambda c: c.code in frozen, frozen)

    if op == "=":
        return Filter(lambda c: value in _values(index, c, prop))
    if op in ("in", "not-in"):
        allowed = frozenset(v.strip() for v in value.split(",") if v.strip())
        if op == "in":
            if prop in _SELF:
                return Filter(lambda c: c.code in allowed, allowed)
            return Filter(lambda c: any(v in allowed for v in _values(index, c, prop)))
        return Filter(lambda c: not any(v in allowed for v in _values(index, c, prop)))
    if op == "regex":
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise error(Category.INVALID, "bad-regex", value=value) from exc
        return Filter(lambda c: any(pattern.fullmatch(v) for v in _values(index, c, prop)))
    if op == "exists":
        want = value != "false"
        return Filter(lambda c: bool(_values(index, c, prop)) == want)
    raise error(Category.NOT_SUPPORTED, "bad-filter-op", op=op, prop=prop)


def select(index: CodeSystemIndex, filters: Iterable[Filter]) -> list[Concept]:
    """Concepts matching every filter (all concepts when there are none), in system order."""
    fs = list(filters)
    narrowest: frozenset[str] | None = None
    for f in fs:
        if f.candidates is not None and (narrowest is None or len(f.candidates) < len(narrowest)):
            narrowest = f.candidates
    if narrowest is None:
        pool: Iterable[Concept] = index
    else:
        found = (index.get(c) for c in narrowest)
        pool = sorted((c for c in found if c is not None), key=lambda c: c.order)
    return [c for c in pool if all(f.test(c) for f in fs)]

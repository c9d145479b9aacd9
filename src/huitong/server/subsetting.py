"""``_summary`` and ``_elements`` — https://hl7.org/fhir/R4/search.html#summary and
https://hl7.org/fhir/R4/search.html#elements.

A subsetted resource carries the ``SUBSETTED`` tag in ``meta.tag`` so no client mistakes it
for the whole resource (and never PUTs it back as one). Only top-level elements are selected;
``id``, ``meta`` and every mandatory (min >= 1) element are always kept.

``_summary=true`` keeps the elements the specification marks ``isSummary``. The generated
definition tables (:func:`huitong.fhir.definitions.structures`) carry that flag as the sixth
item of an element entry once the generator emits it; until then ``_summary=true`` keeps
only ``id``, ``meta``, ``implicitRules`` and the mandatory elements (a smaller but honest
subset, still tagged SUBSETTED).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from huitong.fhir.definitions import structures

__all__ = ["SUBSETTED", "is_subsetting", "subset"]

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


def is_subsetting(summary: str | None, elements: list[str] | None) -> bool:
    return summary in ("true", "text", "data") or bool(elements)


@cache
def _top_level(resource_type: str) -> tuple[dict[str, bool], dict[str, bool]]:
    """(mandatory?, summary?) per top-level element name; ``value[x]`` kept as ``value``."""
    mandatory: dict[str, bool] = {}
    summary: dict[str, bool] = {}
    prefix = resource_type + "."
    entries = structures().get(resource_type, {}).get("elements", {})
    for path, spec in entries.items():
        if not path.startswith(prefix) or "." in path[len(prefix):]:
            continue
        name = path[len(prefix):].removesuffix("[x]")
        mandatory[name] = int(spec[0]) >= 1
        summary[name] = bool(spec[5]) if len(spec) > 5 else False
    return mandatory, summary


def _element_of(key: str, names: dict[str, bool]) -> str | None:
    """The element a JSON key belongs to: ``_birthDate`` -> birthDate, ``valueQuantity`` ->
    value (a choice type)."""
    key = key.removeprefix("_")
    if key in names:
        return key
    for i in range(len(key) - 1, 0, -1):
        if key[i].isupper() and key[:i] in names:
            return key[:i]
    return None


def subset(
    resource: dict[str, Any], summary: str | None, elements: list[str] | None
) -> dict[str, Any]:
    """The resource reduced per ``_summary`` (true/text/data) or ``_elements``, tagged
    SUBSETTED; returned unchanged when neither asks for a subset. Does not mutate its input."""
    if not is_subsetting(summary, elements):
        return resource
    rtype = str(resource.get("resourceType"))
    mandatory, in_summary = _top_level(rtype)
    if summary == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    else:
        if summary == "text":
            wanted = {"text", "implicitRules"}
        elif summary == "true":
            wanted = {"implicitRules"} | {n for n, s in in_summary.items() if s}
        else:
            wanted = {e.strip().removeprefix(rtype + ".") for e in elements or ()}
        wanted |= {n for n, m in mandatory.items() if m}
        kept = {}
        for k, v in resource.items():
            if k in _ALWAYS or _element_of(k, mandatory) in wanted or k in wanted:
                kept[k] = v
    meta = dict(kept.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    kept["meta"] = meta
    return kept

"""Predicates about coded elements: a usable coding, and codes that belong to one sex.

A CodeableConcept is usable for exchange when at least one coding names both its system and
its code (https://hl7.org/fhir/R4/datatypes.html#CodeableConcept); text alone cannot be
translated or counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from huitong.quality.model import Outcome, ParamValue
from huitong.quality.predicates import PASS, Facts, codes, predicate, text

__all__ = ["codings"]

_SEXES = ("male", "female")


@predicate("has-coding")
def has_coding(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """The CodeableConcept in ``params.element`` has a coding with system and code.

    With ``params.required`` false the rule applies only when the element is present; a
    repeating element passes when every repetition has such a coding.
    """
    element = text(params, "element")
    value = resource.get(element)
    if value is None:
        if not params["required"]:
            return None
        return Outcome(False, f"{resource.get('resourceType')}.{element}")
    for i, concept in enumerate(value if isinstance(value, list) else [value]):
        if next(codings(concept), None) is None:
            where = f"[{i}]" if isinstance(value, list) else ""
            return Outcome(False, f"{resource.get('resourceType')}.{element}{where}")
    return PASS


def codings(value: Any) -> Iterator[tuple[str, str]]:
    """``(system, code)`` of each coding in a CodeableConcept."""
    if not isinstance(value, dict):
        return
    items = value.get("coding")
    if not isinstance(items, list):
        return
    for c in items:
        if isinstance(c, dict):
            system, code = c.get("system"), c.get("code")
            if isinstance(system, str) and isinstance(code, str):
                yield system, code


def _icd10_match(code: str, prefixes: tuple[str, ...]) -> bool:
    compact = code.replace(".", "").upper()
    return any(compact.startswith(p.replace(".", "")) for p in prefixes)


@predicate("sex-specific-code")
def sex_specific_code(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """A resource coded with a concept of one sex is about a patient of that sex.

    Applies when ``code`` carries a code from the rule's tables (ICD-10 prefixes, SNOMED CT
    and LOINC codes) and the subject's gender is male or female; fails when the gender is
    ``params.excluded_gender``.
    """
    icd_systems, icd_prefixes = codes(params, "icd10_systems"), codes(params, "icd10_prefixes")
    snomed, loinc = codes(params, "snomed"), codes(params, "loinc")
    hit: tuple[str, str] | None = None
    for system, code in codings(resource.get("code")):
        if (
            (system in icd_systems and _icd10_match(code, icd_prefixes))
            or (system == "http://snomed.info/sct" and code in snomed)
            or (system == "http://loinc.org" and code in loinc)
        ):
            hit = (system, code)
            break
    if hit is None:
        return None
    subject = facts.subject
    if subject is None or subject.gender not in _SEXES:
        return None
    if subject.gender == text(params, "excluded_gender"):
        return Outcome(False, f"{resource.get('resourceType')}.code", {"code": hit[1]})
    return PASS

"""Predicates about coded elements: a usable coding, and codes that belong to one sex.

A CodeableConcept is usable for exchange when at least one coding names both its system and
its code (https://hl7.org/fhir/R4/datatypes.html#CodeableConcept); text alone cannot be
translated or counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from huitong.quality.model import Outcome, ParamValue
from huitong.quality.predicates import (
    PASS,
    Facts,
    InlineSource,
    Runner,
    codes,
    specialised,
    text,
)

__all__ = ["codings"]

_SEXES = ("male", "female")


def _has_coding_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    # The usual shape — one concept (or a list of one) whose first coding names a system
    # and a code, both strings — passes without a call: the check's first test, spelled
    # out. The single coding the plan reads once per resource (InlineSource.coding, which
    # the sex rules and the code gate read too) answers first when it is there. Every other
    # shape (a missing element, several concepts, a first coding without a code…) is the
    # check's to answer.
    element = text(params, "element")
    check, passed = src.bind(has_coding(params)), src.bind(PASS)
    single = src.coding(element)
    # Validated (see huitong.quality.plan.ValidatedSource), codings are a non-empty array
    # of objects when there, and a system or code a string when there.
    usual = (
        ["    if (type(_iv) is dict and (_il := _iv.get('coding')) is not None",
         "            and 'system' in (_i0 := _il[0]) and 'code' in _i0):"]
        if src.validated
        else ["    if (type(_iv) is dict and type(_il := _iv.get('coding')) is list and _il",
              "            and type(_i0 := _il[0]) is dict and type(_i0.get('system')) is str",
              "            and type(_i0.get('code')) is str):"]
    )  # fmt: skip
    src.lines += [
        f"if {single} is not None:",
        f"    o = {passed}",
        "else:",
        f"    _iv = r.get({element!r})",
        "    if type(_iv) is list and len(_iv) == 1:",
        "        _iv = _iv[0]",
        *usual,
        f"        o = {passed}",
        "    else:",
        f"        o = {check}(r, facts)",
    ]


@specialised("has-coding", inline=_has_coding_inline)
def has_coding(params: Mapping[str, ParamValue]) -> Runner:
    """The CodeableConcept in ``params.element`` has a coding with system and code.

    With ``params.required`` false the rule applies only when the element is present; a
    repeating element passes when every repetition has such a coding.
    """
    element = text(params, "element")
    required = bool(params["required"])

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        value = resource.get(element)
        if value is None:
            if not required:
                return None
            return Outcome(False, f"{resource.get('resourceType')}.{element}")
        if type(value) is dict and _coded(value):
            return PASS  # the usual case: one concept with a usable coding
        if type(value) is list and all(type(c) is dict and _coded(c) for c in value):
            return PASS  # a repeating element, every concept usable
        for i, concept in enumerate(value if isinstance(value, list) else [value]):
            if next(codings(concept), None) is None:
                where = f"[{i}]" if isinstance(value, list) else ""
                return Outcome(False, f"{resource.get('resourceType')}.{element}{where}")
        return PASS

    return check


def _coded(concept: dict[str, Any]) -> bool:
    """Whether :func:`codings` yields anything for ``concept``, without the generator."""
    items = concept.get("coding")
    if isinstance(items, list):
        for c in items:
            if isinstance(c, dict) and isinstance(c.get("system"), str) and isinstance(
                c.get("code"), str
            ):
                return True
    return False


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


def _sex_specific(
    params: Mapping[str, ParamValue],
) -> tuple[dict[tuple[str, str], bool], Runner]:
    """The check of one sex-specific-code rule and its memo of ``(system, code)`` → whether
    the code is in the rule's tables (the plan's inline form reads the memo, see
    :func:`_sex_specific_inline`)."""
    icd_systems, icd_prefixes = codes(params, "icd10_systems"), codes(params, "icd10_prefixes")
    snomed, loinc = frozenset(codes(params, "snomed")), frozenset(codes(params, "loinc"))
    excluded = text(params, "excluded_gender")
    # Whether a (system, code) is in the tables, remembered: a region sends the same few
    # hundred codes again and again, and the ICD-10 test is a prefix scan.
    known: dict[tuple[str, str], bool] = {}

    def in_tables(system: str, code: str) -> bool:
        key = (system, code)
        hit = known.get(key)
        if hit is None:
            hit = (
                (system in icd_systems and _icd10_match(code, icd_prefixes))
                or (system == "http://snomed.info/sct" and code in snomed)
                or (system == "http://loinc.org" and code in loinc)
            )
            if len(known) >= 16_384:
                known.clear()
            known[key] = hit
        return hit

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        # codings() spelled out: this runs twice on every Observation, Condition and
        # Procedure, and the generator cost more than the lookups.
        concept = resource.get("code")
        items = concept.get("coding") if isinstance(concept, dict) else None
        if not isinstance(items, list):
            return None
        hit: str | None = None
        for c in items:
            if isinstance(c, dict):
                system, code = c.get("system"), c.get("code")
                if isinstance(system, str) and isinstance(code, str) and in_tables(system, code):
                    hit = code
                    break
        if hit is None:
            return None
        subject = facts.subject
        if subject is None or subject.gender not in _SEXES:
            return None
        if subject.gender == excluded:
            return Outcome(False, f"{resource.get('resourceType')}.code", {"code": hit})
        return PASS

    return known, check


def _sex_specific_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    # Nearly every coded resource carries one coding, already known to be in neither table
    # (the memo says False): that answer (None) without a call. Anything else (several
    # codings, a code never seen, one in a table, odd shapes) is the check's to answer; the
    # memo holds only (str, str) keys, so only exact strings are looked up.
    known, check = _sex_specific(params)
    memo, call, single = src.bind(known), src.bind(check), src.coding("code")
    src.lines += [
        f"if {single} is not None and {memo}.get({single}) is False:",
        "    o = None",
        "else:",
        f"    o = {call}(r, facts)",
    ]


@specialised("sex-specific-code", inline=_sex_specific_inline)
def sex_specific_code(params: Mapping[str, ParamValue]) -> Runner:
    """A resource coded with a concept of one sex is about a patient of that sex.

    Applies when ``code`` carries a code from the rule's tables (ICD-10 prefixes, SNOMED CT
    and LOINC codes) and the subject's gender is male or female; fails when the gender is
    ``params.excluded_gender``.
    """
    return _sex_specific(params)[1]

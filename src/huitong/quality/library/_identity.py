"""Predicates about who the person is: the resident ID number, and sex across records.

Resident ID numbers are read with :func:`huitong.mpi.resident_id.parse_resident_id`
(GB 11643-1999). Messages never repeat the number: it is personal data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from huitong.mpi.resident_id import ResidentId, ResidentIdError, parse_resident_id
from huitong.quality.model import Outcome, ParamValue
from huitong.quality.predicates import PASS, Facts, codes, predicate

__all__: list[str] = []

_SEXES = ("male", "female")
_SEX_ZH = {"male": "男", "female": "女"}


def _resident_ids(
    patient: Mapping[str, Any], params: Mapping[str, ParamValue]
) -> Iterator[tuple[int, str]]:
    systems = codes(params, "systems")
    identifiers = patient.get("identifier")
    if not isinstance(identifiers, list):
        return
    for i, ident in enumerate(identifiers):
        if (
            isinstance(ident, dict)
            and ident.get("system") in systems
            and isinstance(ident.get("value"), str)
            and ident.get("use") != "old"
        ):
            yield i, ident["value"]


def _parsed_ids(
    patient: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> list[tuple[int, ResidentId]]:
    """The valid current resident ID numbers, parsed once per evaluation."""
    key = ("resident_ids", codes(params, "systems"))
    cached = facts.memo.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    out = []
    for i, value in _resident_ids(patient, params):
        try:
            out.append((i, parse_resident_id(value)))
        except ResidentIdError:
            continue
    facts.memo[key] = out
    return out


@predicate("resident-id-valid")
def resident_id_valid(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """Every current resident ID number parses and its check character is right."""
    seen = False
    for i, value in _resident_ids(resource, params):
        seen = True
        try:
            parse_resident_id(value)
        except ResidentIdError as err:
            return Outcome(
                False,
                f"Patient.identifier[{i}].value",
                {"reason_en": err.message_en, "reason_zh": err.message_zh},
            )
    return PASS if seen else None


@predicate("resident-id-birth-date")
def resident_id_birth_date(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """The birth date embedded in a valid resident ID number equals ``Patient.birthDate``."""
    birth = resource.get("birthDate")
    if not isinstance(birth, str) or len(birth) != 10:
        return None  # a partial date cannot be compared exactly
    ids = _parsed_ids(resource, facts, params)
    if not ids:
        return None
    for i, parsed in ids:
        if parsed.birth_date.isoformat() != birth:
            return Outcome(False, f"Patient.identifier[{i}].value")
    return PASS


@predicate("resident-id-sex")
def resident_id_sex(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """The sex embedded in a valid resident ID number equals ``Patient.gender``."""
    gender = resource.get("gender")
    if gender not in _SEXES:
        return None
    ids = _parsed_ids(resource, facts, params)
    if not ids:
        return None
    for i, parsed in ids:
        if parsed.sex != gender:
            return Outcome(
                False,
                f"Patient.identifier[{i}].value",
                {"id_sex": parsed.sex, "id_sex_zh": _SEX_ZH[parsed.sex]},
            )
    return PASS


@predicate("sex-agrees-across-institutions")
def sex_agrees_across_institutions(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """The gender on this record equals the one every other institution recorded for the
    same person (unknown/other on either side is not compared)."""
    gender = resource.get("gender")
    if gender not in _SEXES:
        return None
    others = [r for r in facts.ctx.sexes_elsewhere(resource) if r.gender in _SEXES]
    if not others:
        return None
    for other in others:
        if other.gender != gender:
            return Outcome(False, "Patient.gender", {"organization": other.organization})
    return PASS

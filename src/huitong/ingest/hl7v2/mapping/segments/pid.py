"""PID (+ PD1, NK1) → ``Patient``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-pid-to-patient.html).

The patient is keyed by the MRN: the first PID-3 repetition typed ``MR`` (else the first
PID-3, else PID-2 from older versions), with its assigning authority as the system. For ADT
messages, the demographic source, it is a conditional update; other messages create it only
when absent, so a sparse PID in a lab result never erases what registration recorded.
A PID without any identifier is a content error (0357 code 101).
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    RESIDENT_ID_SYSTEM,
    cwe_codeable_concept,
    cx_identifier,
    dtm_date,
    dtm_datetime,
    xad_address,
    xcn_reference,
    xpn_name,
    xtn_contact_point,
)
from huitong.ingest.hl7v2.mapping.errors import MappingError
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_patient", "patient_identifiers"]

_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "N": "other",
           "U": "unknown", "男": "male", "女": "female", "1": "male", "2": "female"}
_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
_V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
_V2_0063 = "http://terminology.hl7.org/CodeSystem/v2-0063"


def patient_identifiers(state: MapState, pid: Segment) -> list[dict[str, Any]]:
    """Identifiers from PID-3 (and PID-2, PID-4 of older versions, PID-19 SSN)."""
    out: list[dict[str, Any]] = []
    for n in (3, 2, 4):
        for cx in pid.reps(n):
            ident = cx_identifier(state, cx, "mrn")
            if ident and not any(
                (i["system"], i["value"]) == (ident["system"], ident["value"]) for i in out
            ):
                out.append(ident)
    return out


def _key(identifiers: list[dict[str, Any]]) -> dict[str, Any]:
    """The identifier the patient is keyed by: MR first, else the first that is not the
    resident id (a hospital keys its patients by its own number), else the first."""
    for ident in identifiers:
        codes = [c.get("code") for c in ident.get("type", {}).get("coding", [])]
        if "MR" in codes:
            return ident
    return next((i for i in identifiers if i["system"] != RESIDENT_ID_SYSTEM), identifiers[0])


def map_patient(state: MapState, pid: Segment, pd1: Segment | None = None,
                nk1s: list[Segment] | None = None) -> str:
    """Add the Patient for ``pid`` to the Bundle; returns its fullUrl."""
    identifiers = patient_identifiers(state, pid)
    if not identifiers:
        raise MappingError(101, pid.loc(3), "PID-3 (patient identifier list) is empty",
                           "PID-3（患者标识符列表）为空")
    key = _key(identifiers)
    patient: dict[str, Any] = {"resourceType": "Patient", "identifier": identifiers,
                               "active": True}
    names = [n for n in (xpn_name(v) for v in pid.reps(5)) if n]
    if names:
        patient["name"] = names
    telecom = [t for t in (xtn_contact_point(v, "home") for v in pid.reps(13)) if t]
    telecom += [t for t in (xtn_contact_point(v, "work") for v in pid.reps(14)) if t]
    if telecom:
        patient["telecom"] = telecom
    gender = pid.get(8).upper()
    if gender:
        if gender in _GENDER:
            patient["gender"] = _GENDER[gender]
        else:
            state.warn("unmapped-code", pid.loc(8), f"Unknown administrative sex {gender!r}",
                       f"未知的性别代码 {gender!r}")
    birth = pid.get(7)
    if birth:
        value = dtm_date(birth)
        if value:
            patient["birthDate"] = value
        else:
            state.warn("bad-date", pid.loc(7), "PID-7 is not a date; birth date dropped",
                       "PID-7 不是有效日期，已忽略出生日期")
    addresses = [a for a in (xad_address(v) for v in pid.reps(11)) if a]
    if addresses:
        patient["address"] = addresses
    marital = pid.value(16)
    if not marital.empty:
        patient["maritalStatus"] = cwe_codeable_concept(state, marital, _MARITAL)
    language = pid.value(15)
    if not language.empty:
        patient["communication"] = [{"language": cwe_codeable_concept(state, language)}]
    death_time, death_flag = pid.get(29), pid.get(30).upper()
    if death_time and dtm_datetime(death_time, state.ctx.default_utc_offset):
        patient["deceasedDateTime"] = dtm_datetime(death_time, state.ctx.default_utc_offset)
    elif death_flag in ("Y", "N"):
        patient["deceasedBoolean"] = death_flag == "Y"
    multiple = pid.get(24).upper()
    birth_order = pid.get(25)
    if birth_order.isdigit():
        patient["multipleBirthInteger"] = int(birth_order)
    elif multiple in ("Y", "N"):
        patient["multipleBirthBoolean"] = multiple == "Y"
    if pd1 is not None:
        gps = [r for r in (xcn_reference(state, v, patient) for v in pd1.reps(4)) if r]
        if gps:
            patient["generalPractitioner"] = gps
    contacts = [c for c in (_contact(state, nk1) for nk1 in nk1s or []) if c]
    if contacts:
        patient["contact"] = contacts
    patient["managingOrganization"] = {"reference": state.ctx.organization}
    ident = (key["system"], key["value"])
    if state.owns_patient:
        ref = state.builder.put(patient, ident)
    else:
        ref = state.builder.ensure(patient, ident)
    state.patient = ref
    state.patient_identifier = ident
    state.patient_identifiers = [(i["system"], i["value"]) for i in identifiers]
    return ref


def _contact(state: MapState, nk1: Segment) -> dict[str, Any] | None:
    """NK1 → Patient.contact (the IG's default; RelatedPerson is for richer cases)."""
    contact: dict[str, Any] = {}
    relationship = nk1.value(3)
    role = nk1.value(7)
    concepts = [c for c in (cwe_codeable_concept(state, relationship, _V2_0063),
                            cwe_codeable_concept(state, role, _V2_0131)) if c]
    if concepts:
        contact["relationship"] = concepts
    name = next((n for n in (xpn_name(v) for v in nk1.reps(2)) if n), None)
    if name:
        contact["name"] = name
    telecom = [t for t in (xtn_contact_point(v, "home") for v in nk1.reps(5)) if t]
    telecom += [t for t in (xtn_contact_point(v, "work") for v in nk1.reps(6)) if t]
    if telecom:
        contact["telecom"] = telecom
    address = next((a for a in (xad_address(v) for v in nk1.reps(4)) if a), None)
    if address:
        contact["address"] = address
    gender = _GENDER.get(nk1.get(15).upper())
    if gender:
        contact["gender"] = gender
    if not any(k in contact for k in ("name", "telecom", "address", "organization")):
        org = nk1.get(13)
        if not org:
            return None
        contact["organization"] = {"display": org}
    return contact

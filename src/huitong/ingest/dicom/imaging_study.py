"""DICOM instances into ImagingStudy resources, following FHIR's DICOM mapping
(https://hl7.org/fhir/R4/imagingstudy-mappings.html#dicom):

=============================  ==========================================================
ImagingStudy                   DICOM
=============================  ==========================================================
identifier (urn:dicom:uid)     Study Instance UID (0020,000D) as ``urn:oid:<uid>``
identifier (type ACSN)         Accession Number (0008,0050)
subject                        Patient ID (0010,0020) in the institution's MRN system
started                        Study Date/Time (0008,0020/0030) + Timezone Offset (0008,0201)
referrer.display               Referring Physician's Name (0008,0090)
description                    Study Description (0008,1030)
modality                       Modality (0008,0060) of every series
numberOfSeries/Instances       counted
series.uid / number            Series Instance UID (0020,000E) / Series Number (0020,0011)
series.modality                Modality, DCM code system
series.description             Series Description (0008,103E)
series.bodySite / laterality   Body Part Examined (0018,0015) / Laterality (0020,0060)
series.started                 Series Date/Time (0008,0021/0031)
series.performer.actor         the channel's Organization
series.instance.uid / number   SOP Instance UID (0008,0018) / Instance Number (0020,0013)
series.instance.sopClass       SOP Class UID (0008,0016), ``urn:ietf:rfc:3986``
=============================  ==========================================================

Files are grouped by Study Instance UID, so the files of one study become one ImagingStudy;
``existing`` studies (read by the caller from the repository) are merged in, so importing a
study's files in several batches builds one resource. Each study is a conditional update
keyed by its UID: re-importing the same files changes nothing but the version.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path
from typing import IO, Any

from huitong.fhir.errors import FhirError
from huitong.fhir.validation import validate_resource
from huitong.ingest.dicom.metadata import InstanceMeta, read_instance
from huitong.ingest.feeds.problems import Problem, Reason
from huitong.ingest.feeds.transaction import Conversion, Transaction, conditional_reference

__all__ = [
    "DICOM_UID",
    "DicomContext",
    "build_imaging_studies",
    "convert_dicom_files",
    "read_dicom_files",
    "study_identifier",
]

DICOM_UID = "urn:dicom:uid"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
RFC3986 = "urn:ietf:rfc:3986"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_LATERALITY = {"L": ("7771000", "Left"), "R": ("24028007", "Right")}  # SNOMED CT


@dataclass(frozen=True, slots=True)
class DicomContext:
    """The institution the images come from: ``patient_system`` is the identifier system of
    its Patient IDs (its MRN system, e.g. ``urn:huitong:mrn:<org>``), ``accession_system`` of
    its accession numbers; ``organization`` (a reference) becomes each series' performer;
    ``timezone`` applies to DICOM times without an offset."""

    patient_system: str
    accession_system: str | None = None
    organization: str | None = None
    timezone: timezone = field(default_factory=lambda: timezone(timedelta(hours=8)))


def study_identifier(study_uid: str) -> tuple[str, str]:
    """``(system, value)`` of a study's identifier."""
    return DICOM_UID, f"urn:oid:{study_uid}"


def _offset(raw: str | None, default: timezone) -> str:
    if raw and len(raw) == 5 and raw[0] in "+-" and raw[1:].isdigit():
        return f"{raw[:3]}:{raw[3:]}"
    seconds = int(default.utcoffset(None).total_seconds())
    sign = "-" if seconds < 0 else "+"
    return f"{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"


def _started(date: str | None, time: str | None, tz: str) -> str | None:
    """DICOM DA (YYYYMMDD) and TM (HH[MM[SS[.F]]]) as a FHIR dateTime."""
    if not date or len(date) != 8 or not date.isdigit():
        return None
    day = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    clock = (time or "").split(".")[0].replace(":", "")
    if len(clock) < 2 or not clock.isdigit():
        return day
    clock = (clock + "0000")[:6]
    return f"{day}T{clock[:2]}:{clock[2:4]}:{clock[4:6]}{tz}"


def _instance(m: InstanceMeta) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uid": m.sop_uid, "sopClass": {"system": RFC3986, "code": f"urn:oid:{m.sop_class_uid}"},
    }
    if m.instance_number is not None and m.instance_number >= 0:
        out["number"] = m.instance_number
    if m.instance_title:
        out["title"] = m.instance_title
    return out


def _series(m: InstanceMeta, tz: str, organization: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"uid": m.series_uid}
    if m.series_number is not None and m.series_number >= 0:
        out["number"] = m.series_number
    out["modality"] = {"system": DCM, "code": m.modality or "OT"}
    if m.series_description:
        out["description"] = m.series_description
    if m.body_part:
        out["bodySite"] = {"display": m.body_part}
    if m.laterality in _LATERALITY:
        code, display = _LATERALITY[m.laterality]
        out["laterality"] = {"system": "http://snomed.info/sct", "code": code,
                             "display": display}
    started = _started(m.series_date, m.series_time, tz)
    if started:
        out["started"] = started
    if organization:
        out["performer"] = [{"actor": {"reference": organization}}]
    return out


def _order(item: dict[str, Any]) -> tuple[int, str]:
    return item.get("number", 1 << 30), item["uid"]


def _merge_series(existing: dict[str, Any] | None, files: list[InstanceMeta], tz: str,
                  organization: str | None) -> dict[str, dict[str, Any]]:
    series: dict[str, dict[str, Any]] = {}
    for s in (existing or {}).get("series", []):
        series[s["uid"]] = {**s, "instance": {i["uid"]: i for i in s.get("instance", [])}}
    for m in files:
        fresh = _series(m, tz, organization)
        current = series.setdefault(m.series_uid, {**fresh, "instance": {}})
        current.update({k: v for k, v in fresh.items() if k != "uid"})
        current["instance"][m.sop_uid] = _instance(m)
    return series


def _study(uid: str, files: list[InstanceMeta], ctx: DicomContext,
           existing: dict[str, Any] | None) -> dict[str, Any]:
    first = files[0]
    tz = _offset(first.tz_offset, ctx.timezone)
    series = _merge_series(existing, files, tz, ctx.organization)
    out_series = []
    for s in sorted(series.values(), key=_order):
        instances = sorted(s["instance"].values(), key=_order)
        out_series.append({**s, "numberOfInstances": len(instances), "instance": instances})
    system, value = study_identifier(uid)
    study: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "identifier": [{"system": system, "value": value}],
        "status": "available",
    }
    accession = next((m.accession_number for m in files if m.accession_number), None)
    if accession:
        ident: dict[str, Any] = {"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                                 "value": accession}
        if ctx.accession_system:
            ident["system"] = ctx.accession_system
        study["identifier"].append(ident)
    elif existing:
        study["identifier"] += [i for i in existing.get("identifier", [])
                                if i.get("system") != DICOM_UID]
    modalities = sorted({s["modality"]["code"] for s in out_series})
    study["modality"] = [{"system": DCM, "code": c} for c in modalities]
    study["subject"] = {"reference": conditional_reference(
        "Patient", ctx.patient_system, str(first.patient_id))}
    started = _started(first.study_date, first.study_time, tz)
    if started:
        study["started"] = started
    elif existing and existing.get("started"):
        study["started"] = existing["started"]
    referrer = first.referring_physician
    if referrer:
        study["referrer"] = {"display": referrer}
    study["numberOfSeries"] = len(out_series)
    study["numberOfInstances"] = sum(s["numberOfInstances"] for s in out_series)
    if first.study_description:
        study["description"] = first.study_description
    study["series"] = out_series
    return study


def build_imaging_studies(
    instances: Iterable[InstanceMeta], ctx: DicomContext,
    existing: Mapping[str, dict[str, Any]] | None = None,
    problems: Iterable[Problem] = (),
) -> Conversion:
    """One ImagingStudy per Study Instance UID among ``instances`` (merged with
    ``existing[study_uid]`` when given), as conditional updates in a transaction Bundle.

    A study whose files give no Patient ID is reported (one problem per file) and left out;
    the others are still converted. ``problems`` (from reading the files) are carried into
    the result and count as records."""
    read_problems = list(problems)
    groups: dict[str, list[InstanceMeta]] = {}
    for m in instances:
        groups.setdefault(m.study_uid, []).append(m)
    tx, out, accepted = Transaction(), list(read_problems), 0
    for uid, files in groups.items():
        patient_ids = {m.patient_id for m in files if m.patient_id}
        if len(patient_ids) != 1:
            en, zh = (("no Patient ID (0010,0020)", "缺少患者 ID (0010,0020)") if not patient_ids
                      else ("files of one study name different Patient IDs",
                            "同一检查的文件给出了不同的患者 ID"))
            out += [Problem(Reason.MISSING_VALUE, en, zh, source=m.source, field="PatientID")
                    for m in files]
            continue
        study = _study(uid, files, ctx, (existing or {}).get(uid))
        try:
            validate_resource(study)
        except FhirError as err:
            out += [Problem(Reason.INVALID_RESOURCE, f"ImagingStudy not valid: {err.message}",
                            "生成的 ImagingStudy 不符合 FHIR 规范", source=m.source)
                    for m in files]
            continue
        tx.add(study, *study_identifier(uid), mode="update")
        accepted += len(files)
    count = sum(len(f) for f in groups.values()) + len(read_problems)
    return Conversion(tx.bundle(), out, records=count, accepted=accepted)


def _files(sources: Iterable[str | os.PathLike[str]]) -> Iterable[Path]:
    for source in sources:
        path = Path(source)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def read_dicom_files(
    sources: Iterable[str | os.PathLike[str] | tuple[str, IO[bytes]]],
) -> tuple[list[InstanceMeta], list[Problem]]:
    """Read every file (paths, directories walked recursively, or ``(name, binary stream)``
    pairs for uploads): the metadata of the DICOM ones and a problem for each other file.
    The executor can then look up the stored studies of ``{m.study_uid for m in metas}`` and
    pass them to :func:`build_imaging_studies` as ``existing``."""
    metas: list[InstanceMeta] = []
    problems: list[Problem] = []
    paths: list[str | os.PathLike[str]] = []
    found: InstanceMeta | Problem
    for s in sources:
        if isinstance(s, tuple):
            found = read_instance(s[1], s[0])
            (problems.append(found) if isinstance(found, Problem) else metas.append(found))
        else:
            paths.append(s)
    for p in _files(paths):
        found = read_instance(p)
        (problems.append(found) if isinstance(found, Problem) else metas.append(found))
    return metas, problems


def convert_dicom_files(
    sources: Iterable[str | os.PathLike[str] | tuple[str, IO[bytes]]], ctx: DicomContext,
    existing: Mapping[str, dict[str, Any]] | None = None,
) -> Conversion:
    """:func:`read_dicom_files` then :func:`build_imaging_studies`: files that are not DICOM,
    or lack their UIDs, are one problem each; the others are still processed."""
    metas, problems = read_dicom_files(sources)
    return build_imaging_studies(metas, ctx, existing, problems)

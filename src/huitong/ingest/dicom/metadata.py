"""Reading the metadata of one DICOM file (PS3.10 — https://dicom.nema.org/medical/dicom/current/output/html/part10.html)
with pydicom, pixel data left unread (``stop_before_pixels``): the pixels stay in the PACS.

A file without the 128-byte preamble and ``DICM`` prefix is retried as a bare data set (older
modalities write those), and accepted only if it names its study, series and instance; anything
else is a :class:`~huitong.ingest.feeds.problems.Problem` for that file.
"""

from __future__ import annotations

import logging
import os
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pydicom
from pydicom.errors import InvalidDicomError

from huitong.ingest.feeds.problems import Problem, Reason

__all__ = ["InstanceMeta", "read_instance"]

# pydicom warns (and logs, on the "pydicom" logger) about invalid values by quoting them, and
# those values can be names or IDs. While we read, its records are dropped and its warnings
# silenced; the file's problem, without values, is what we report.
_READING: ContextVar[bool] = ContextVar("huitong_dicom_reading", default=False)


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _READING.get()


logging.getLogger("pydicom").addFilter(_Quiet())


@dataclass(frozen=True, slots=True)
class InstanceMeta:
    """The attributes the ImagingStudy mapping uses (PS3.3 tags; empty ones are None).
    ``source`` is the file's name (not its path), for problem reports."""

    source: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    patient_id: str | None
    issuer_of_patient_id: str | None
    accession_number: str | None
    study_date: str | None
    study_time: str | None
    series_date: str | None
    series_time: str | None
    tz_offset: str | None
    study_description: str | None
    series_description: str | None
    modality: str | None
    body_part: str | None
    laterality: str | None
    series_number: int | None
    instance_number: int | None
    referring_physician: str | None
    instance_title: str | None


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    text = str(value).strip() if value is not None else ""
    return text or None


def _int(ds: Any, keyword: str) -> int | None:
    text = _text(ds, keyword)
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def _person(ds: Any, keyword: str) -> str | None:
    """A PN value for display: the ideographic form when present (Chinese names are often
    sent as ``Wang^XiaoDong=王^小东``), components joined without the ``^`` separators."""
    value = ds.get(keyword)
    if value is None or not str(value).strip():
        return None
    groups = str(value).split("=")
    chosen = groups[1] if len(groups) > 1 and groups[1].strip() else groups[0]
    parts = [p.strip() for p in chosen.split("^") if p.strip()]
    if not parts:
        return None
    if any("\u4e00" <= ch <= "\u9fff" for ch in chosen):
        return "".join(parts[:2])  # family name first, no space
    return " ".join(parts[1:2] + parts[:1] + parts[2:])


def _read(source: Any, force: bool) -> Any:
    return pydicom.dcmread(source, stop_before_pixels=True, force=force)


def read_instance(source: str | os.PathLike[str] | IO[bytes], name: str | None = None
                  ) -> InstanceMeta | Problem:
    """The metadata of one DICOM file (a path or a binary stream), or the problem that kept
    it from being read (:attr:`Reason.NOT_DICOM`, :attr:`Reason.MISSING_UID`). pydicom's
    warnings and log records, which quote values, are suppressed while reading."""
    token = _READING.set(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _read_instance(source, name)
    finally:
        _READING.reset(token)


def _damaged(label: str, exc: Exception) -> Problem:
    return Problem(Reason.NOT_DICOM, f"not a readable DICOM file ({exc.__class__.__name__})",
                   "不是可读取的 DICOM 文件", source=label)


def _read_instance(source: str | os.PathLike[str] | IO[bytes], name: str | None
                   ) -> InstanceMeta | Problem:
    label = name or (Path(source).name if isinstance(source, str | os.PathLike) else "stream")
    # pydicom parses elements lazily, so a damaged element can raise at any access below;
    # whatever it raises (many types) concerns this one file only
    try:
        try:
            ds = _read(source, force=False)
        except InvalidDicomError:
            if not isinstance(source, str | os.PathLike):
                source.seek(0)
            ds = _read(source, force=True)
        return _meta(ds, label)
    except Exception as exc:
        return _damaged(label, exc)


def _meta(ds: Any, label: str) -> InstanceMeta | Problem:
    uids = [_text(ds, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    meta = getattr(ds, "file_meta", None)
    uids.append(_text(ds, "SOPClassUID")
                or (_text(meta, "MediaStorageSOPClassUID") if meta is not None else None))
    if not all(uids):
        if not any(uids[:3]) and "PatientID" not in ds and "Modality" not in ds:
            return Problem(Reason.NOT_DICOM, "not a DICOM file", "不是 DICOM 文件", source=label)
        names = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
        missing = [k for k, v in zip(names, uids, strict=True) if not v]
        return Problem(Reason.MISSING_UID, f"missing {', '.join(missing)}",
                       f"缺少 {'、'.join(missing)}", source=label, field=missing[0])
    study, series, sop, sop_class = (str(u) for u in uids)
    return InstanceMeta(
        source=label, study_uid=study, series_uid=series, sop_uid=sop,
        sop_class_uid=sop_class,
        patient_id=_text(ds, "PatientID"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
        accession_number=_text(ds, "AccessionNumber"),
        study_date=_text(ds, "StudyDate"), study_time=_text(ds, "StudyTime"),
        series_date=_text(ds, "SeriesDate"), series_time=_text(ds, "SeriesTime"),
        tz_offset=_text(ds, "TimezoneOffsetFromUTC"),
        study_description=_text(ds, "StudyDescription"),
        series_description=_text(ds, "SeriesDescription"),
        modality=_text(ds, "Modality"), body_part=_text(ds, "BodyPartExamined"),
        laterality=_text(ds, "Laterality"),
        series_number=_int(ds, "SeriesNumber"), instance_number=_int(ds, "InstanceNumber"),
        referring_physician=_person(ds, "ReferringPhysicianName"),
        instance_title=_text(ds, "ContentLabel"),
    )

"""DICOM files into ImagingStudy: pydicom's own test files and files written here; grouping
by study, merging re-imports, bad files, and the real server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from fhir_test_client import FhirServer
from huitong.fhir.validation import validate_resource
from huitong.ingest.dicom import (
    DicomContext,
    build_imaging_studies,
    convert_dicom_files,
    read_dicom_files,
    read_instance,
)
from huitong.ingest.feeds import Problem, Reason

MRN = "urn:huitong:mrn:H01"
CTX = DicomContext(MRN, accession_system="urn:huitong:accession:H01")
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY = "1.2.826.0.1.3680043.8.498.1"


def sample_file(name: str) -> str:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not available offline")
    return str(path)


def write_dicom(path: Path, *, series: int, instance: int, study: str = STUDY,
                patient: str | None = "P0001", modality: str = "CT") -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE)
    meta.MediaStorageSOPInstanceUID = UID(f"{study}.{series}.{instance}")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = f"{study}.{series}"
    if patient is not None:
        ds.PatientID = patient
    ds.PatientName = "Wang^XiaoDong=王^小东"
    ds.ReferringPhysicianName = "Li^Ming=李^明"
    ds.AccessionNumber = "ACC-2024-0001"
    ds.StudyDate, ds.StudyTime = "20240305", "083015.123"
    ds.SeriesDate, ds.SeriesTime = "20240305", f"08{30 + series:02d}"
    ds.TimezoneOffsetFromUTC = "+0800"
    ds.StudyDescription = "胸部CT平扫"
    ds.SeriesDescription = f"Series {series}"
    ds.Modality = modality
    ds.BodyPartExamined = "CHEST"
    ds.Laterality = "L" if series == 2 else ""
    ds.SeriesNumber = series
    ds.InstanceNumber = instance
    ds.save_as(path, enforce_file_format=True)
    return path


def study_files(tmp: Path) -> list[Path]:
    # written out of order on purpose: the study lists series and instances by number
    return [write_dicom(tmp / f"s{s}i{i}.dcm", series=s, instance=i)
            for s in (2, 1) for i in (3, 1, 2)]


def test_pydicom_samples_and_a_non_dicom_file() -> None:
    files = [sample_file(n) for n in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")]
    conv = convert_dicom_files([*files, sample_file("README.txt")], CTX)
    assert (conv.records, conv.accepted) == (4, 3)
    assert [(p.reason, p.source) for p in conv.problems] == [(Reason.NOT_DICOM, "README.txt")]
    studies = {e["resource"]["modality"][0]["code"]: e for e in conv.entries}
    assert set(studies) == {"CT", "MR", "RTPLAN"}
    ct = studies["CT"]
    assert ct["request"]["method"] == "PUT"
    assert ct["request"]["url"] == ("ImagingStudy?identifier=urn:dicom:uid|urn:oid:"
                                    "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322")
    r = ct["resource"]
    assert r["subject"] == {"reference": f"Patient?identifier={MRN}|1CT1"}
    assert r["started"].startswith("2004-01-19T07:27:30")
    assert r["series"][0]["instance"][0]["sopClass"] == {
        "system": "urn:ietf:rfc:3986", "code": f"urn:oid:{CT_IMAGE}"}
    for e in conv.entries:
        validate_resource(e["resource"])


def test_files_of_one_study_make_one_imaging_study(tmp_path: Path) -> None:
    files = study_files(tmp_path)
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    conv = convert_dicom_files([tmp_path], CTX)  # a directory, walked
    assert (conv.records, conv.accepted) == (8, 6)
    assert {(p.reason, p.source) for p in conv.problems} == {
        (Reason.NOT_DICOM, "notes.txt"), (Reason.NOT_DICOM, "broken.dcm")}
    [entry] = conv.entries
    study = entry["resource"]
    validate_resource(study)
    assert study["numberOfSeries"] == 2 and study["numberOfInstances"] == 6
    assert study["identifier"] == [
        {"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY}"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                              "code": "ACSN"}]},
         "value": "ACC-2024-0001", "system": "urn:huitong:accession:H01"}]
    assert study["started"] == "2024-03-05T08:30:15+08:00"
    assert study["referrer"] == {"display": "李明"}
    assert study["description"] == "胸部CT平扫"
    assert study["modality"] == [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                  "code": "CT"}]
    s1, s2 = study["series"]
    assert (s1["number"], s2["number"]) == (1, 2)
    assert [i["number"] for i in s1["instance"]] == [1, 2, 3]
    assert s1["bodySite"] == {"display": "CHEST"} and "laterality" not in s1
    assert s2["laterality"]["code"] == "7771000"
    assert s2["started"] == "2024-03-05T08:32:00+08:00"
    assert s1["numberOfInstances"] == 3 and len(files) == 6


def test_missing_patient_id_or_uids_are_problems(tmp_path: Path) -> None:
    a = write_dicom(tmp_path / "a.dcm", series=1, instance=1, study="1.2.3.4", patient=None)
    conv = convert_dicom_files([a, write_dicom(tmp_path / "b.dcm", series=1, instance=1)], CTX)
    assert [(p.reason, p.source, p.field) for p in conv.problems] == [
        (Reason.MISSING_VALUE, "a.dcm", "PatientID")]
    assert len(conv.entries) == 1
    c = write_dicom(tmp_path / "c.dcm", series=1, instance=2)
    ds = dcmread(c)
    del ds.SeriesInstanceUID
    ds.save_as(c)
    found = read_instance(c)
    assert isinstance(found, Problem)
    assert (found.reason, found.field, found.source) == (
        Reason.MISSING_UID, "SeriesInstanceUID", "c.dcm")


def test_uploads_as_streams_and_the_performing_organization(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "x.dcm", series=1, instance=1)
    ctx = DicomContext(MRN, organization="Organization?identifier=urn:huitong:org-code|H01")
    with path.open("rb") as f:
        conv = convert_dicom_files([("upload.dcm", f)], ctx)
    assert conv.accepted == 1 and conv.problems == []
    [series] = conv.entries[0]["resource"]["series"]
    assert series["performer"] == [{"actor": {
        "reference": "Organization?identifier=urn:huitong:org-code|H01"}}]


def _stored(fhir: FhirServer) -> dict[str, Any]:
    [study] = fhir.search(f"ImagingStudy?identifier=urn:dicom:uid|urn:oid:{STUDY}")
    return study


def test_reimport_and_batches_merge_into_one_study(fhir: FhirServer, tmp_path: Path) -> None:
    fhir.create({"resourceType": "Patient", "identifier": [{"system": MRN, "value": "P0001"}]})
    files = study_files(tmp_path)
    fhir.post_bundle(convert_dicom_files(files[:2], CTX).bundle)
    assert _stored(fhir)["numberOfInstances"] == 2
    # the rest arrive later: the executor reads the files, looks up the stored studies they
    # belong to, and passes them in so the import merges
    metas, problems = read_dicom_files(files[2:])
    assert {m.study_uid for m in metas} == {STUDY} and problems == []
    fhir.post_bundle(build_imaging_studies(metas, CTX, {STUDY: _stored(fhir)}).bundle)
    study = _stored(fhir)
    assert study["numberOfSeries"] == 2 and study["numberOfInstances"] == 6
    # re-importing everything changes nothing but the version
    fhir.post_bundle(convert_dicom_files(files, CTX, {STUDY: study}).bundle)
    again = _stored(fhir)
    assert fhir.count("ImagingStudy") == 1
    assert again["series"] == study["series"] and again["subject"] == study["subject"]
    assert again["subject"]["reference"].startswith("Patient/")


def test_public_surface_is_explicit() -> None:
    import huitong.ingest.dicom as dicom

    public = {n for n, v in vars(dicom).items()
              if not n.startswith("_") and not isinstance(v, type(sys))}
    assert set(dicom.__all__) == public

"""Damaged files: truncated, bit-flipped or random — each is a problem or a valid study, never
an exception, and the other files of the batch still convert."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from huitong.fhir.validation import validate_resource
from huitong.ingest.dicom import DicomContext, convert_dicom_files

CTX = DicomContext("urn:huitong:mrn:H01")
_CT = get_testdata_file("CT_small.dcm")
SAMPLE = Path(str(_CT)).read_bytes() if _CT else b"\0" * 128 + b"DICM"
GOOD = get_testdata_file("MR_small.dcm")


def _convert(damaged: bytes) -> None:
    sources: list[object] = [("damaged.dcm", io.BytesIO(damaged))]
    if GOOD:
        sources.append(str(GOOD))
    conv = convert_dicom_files(sources, CTX)  # type: ignore[arg-type]
    for e in conv.entries:
        validate_resource(e["resource"])
    if GOOD:  # the good file is never lost to its damaged neighbour
        modalities = {e["resource"]["modality"][0]["code"] for e in conv.entries}
        assert "MR" in modalities
    assert conv.records == len(sources)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(SAMPLE)))
def test_truncated(cut: int) -> None:
    _convert(SAMPLE[:cut])


@settings(max_examples=60, deadline=None)
@example(flips=[(763, 0)])  # a VR destroyed: pydicom raises when the element is first read
@given(st.lists(st.tuples(st.integers(0, min(len(SAMPLE), 2048) - 1), st.integers(0, 255)),
                min_size=1, max_size=8))
def test_bytes_flipped_in_the_header(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE)
    for pos, value in flips:
        data[pos] = value
    _convert(bytes(data))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _convert(data)
    _convert(b"\0" * 128 + b"DICM" + data)


def test_values_in_damaged_files_are_not_logged(caplog: object) -> None:
    import logging

    data = SAMPLE.replace(b"1CT1", b"\xc9\x01T1")  # a Patient ID pydicom would complain about
    with caplog.at_level(logging.DEBUG):  # type: ignore[attr-defined]
        _convert(data)
        _convert(SAMPLE[: len(SAMPLE) // 3])
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]  # type: ignore[attr-defined]

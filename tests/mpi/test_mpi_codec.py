"""The stored form of identity records (mpi_records): a lossless round trip, compact, and
refusing layouts it does not know."""

from __future__ import annotations

import pytest

from huitong.mpi.codec import record_from_json, record_to_json
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.synth import generate_people, noisy_patients


def test_round_trip_keeps_every_field_of_noisy_records():
    sources = noisy_patients(generate_people(200, seed=4), seed=4)
    records = [record_from_patient(s.patient, source_org=f"Organization/{s.org}")
               for s in sources]  # fmt: skip
    assert any(r.resident_id and r.resident_id.upgraded_from_15 for r in records)
    assert any(r.resident_id_text for r in records)
    for record in records:
        text = record_to_json(record)
        assert record_from_json(text) == record
        assert len(text) < 1000


def test_empty_record_and_unknown_layouts():
    empty = IdentityRecord(source="Patient/x")
    assert record_from_json(record_to_json(empty)) == empty
    for bad in ('{"source": "Patient/x"}', "[2]", "[]"):
        with pytest.raises(ValueError):
            record_from_json(bad)

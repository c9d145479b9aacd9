"""Where the shared test data lives, and readers for it (importable from any test folder)."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SYNTHEA_ARCHIVE = SHARED_DATA / "synthea-r4" / "synthea-r4-617-bundles.tar.gz"
HL7V2_SAMPLES = SHARED_DATA / "hl7v2-samples"


def synthea_bundles(limit: int | None = None, *, patients_only: bool = False) -> Iterator[bytes]:
    """Raw Synthea bundles from the shared data set: hospital and practitioner bundles first
    (other bundles reference them), then patient bundles in archive order."""
    if not SYNTHEA_ARCHIVE.exists():
        pytest.skip(f"shared Synthea data not found at {SYNTHEA_ARCHIVE}")
    with tarfile.open(SYNTHEA_ARCHIVE) as tf:
        members = [m for m in tf.getmembers() if m.isfile()]  # some names end in .json"

        def first(m: tarfile.TarInfo) -> int:
            base = m.name.rsplit("/", 1)[-1]
            return 0 if base.startswith(("hospitalInformation", "practitionerInformation")) else 1

        members.sort(key=first)
        if patients_only:
            members = [m for m in members if first(m)]
        for m in members[:limit]:
            f = tf.extractfile(m)
            assert f is not None
            yield f.read()


def source_patients(repo: object) -> int:
    """Patients as institutions sent them: every Patient but the identity service's golden
    records (tag ``urn:huitong:mpi|golden``)."""
    from huitong.fhir.search.parse import parse_search

    q = parse_search("Patient", [("_tag:not", "urn:huitong:mpi|golden"), ("_summary", "count")])
    return int(repo.search(q).total or 0)  # type: ignore[attr-defined]

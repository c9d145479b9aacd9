"""What the identity service does per written Patient, made cheaper: a golden-record lookup
inside the writing transaction (``golden_of(..., tx=)``), and candidate records decoded once
per stored text (``fetch_candidates``), never served stale when a record changes."""

from __future__ import annotations

from typing import Any

from huitong.mpi import service as mpi_service
from huitong.mpi.service import fetch_candidates


def _patient(pid: str, *, phone: str, name: str = "张伟") -> dict[str, Any]:
    return {
        "resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1970-03-05",
        "name": [{"text": name, "family": name[0], "given": [name[1:]]}],
        "managingOrganization": {"reference": "Organization/county"},
        "identifier": [{"system": "urn:huitong:org:county:mrn", "value": pid}],
        "telecom": [{"system": "phone", "value": phone}],
    }


def test_golden_of_in_a_transaction_sees_that_transactions_link(repo, mpi):
    with repo.transaction() as tx:
        tx.update(_patient("a1", phone="13800138000"))
        inside = mpi.golden_of("a1", tx=tx)
        assert inside is not None  # linked by the write hook, in this transaction
    assert mpi.golden_of("a1") == inside  # and committed with it
    with repo.transaction() as tx:
        assert mpi.golden_of("nobody", tx=tx) is None


def test_a_changed_candidate_record_is_decoded_afresh(repo, mpi):
    with repo.transaction() as tx:
        tx.update(_patient("a1", phone="13800138000"))
    key = "ph:13800138000"

    def candidates() -> list[Any]:
        with repo.transaction() as tx:
            return [record for record, _golden in fetch_candidates(tx.execute, [key])]

    mpi_service._decoded_record.cache_clear()
    first = candidates()
    again = candidates()
    assert [r.source for r in first] == ["Patient/a1"]
    assert again[0] is first[0]  # the same stored text: decoded once
    assert mpi_service._decoded_record.cache_info().hits >= 1
    with repo.transaction() as tx:  # the same phone, another name: a new stored text
        tx.update(_patient("a1", phone="13800138000", name="李娜"))
    changed = candidates()
    assert [n.full for n in changed[0].names] == ["李娜"]
    assert [n.full for n in first[0].names] == ["张伟"]

"""The HL7 v2 intake end to end on the real repository (SQLite and PostgreSQL): store raw,
map, write through the FHIR transaction executor, mark processed in the same transaction,
ACK — and resends, failures, retries and reprocessing."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from ingest_clock import Clock

from huitong.config import Settings
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.ingest.channels import channel_from_config
from huitong.ingest.message_store import MessageQuery, MessageStatus
from huitong.ingest.service import IngestService
from huitong.server.bundle import run_transaction
from huitong.server.request import ServerContext
from huitong.store import Repository
from huitong_testdata import HL7V2_SAMPLES


def _sample(name: str) -> bytes:
    path = HL7V2_SAMPLES / name
    if not path.exists():
        pytest.skip(f"shared HL7 v2 samples not found at {HL7V2_SAMPLES}")
    return path.read_bytes()


def _service(repo: Repository, submit=None) -> tuple[IngestService, Clock]:
    clock = Clock()
    ids = (f"id{i}" for i in itertools.count())
    ctx = ServerContext(repo, Settings.from_env({}, database_url="unused"), clock,
                        lambda: next(ids))

    def default_submit(bundle, before_commit):
        return run_transaction(ctx, bundle, before_commit)

    service = IngestService(repo, submit or default_submit, clock, lambda: next(ids))
    service.put_channel(channel_from_config({
        "id": "ghh", "organization": "Organization/ghh", "transport": "mllp",
        "format": "hl7v2", "sending_facility": "GHHSFacility",
    }))
    return service, clock


def _msa(ack: bytes) -> list[str]:
    segments = ack.decode().split("\r")
    msa = next(s for s in segments if s.startswith("MSA"))
    return msa.split("|")


def _count(repo: Repository, rtype: str) -> int:
    return repo.search(parse_search(rtype, [("_summary", "count")])).total or 0


def test_adt_is_stored_written_and_acknowledged(repo):
    service, _ = _service(repo)
    result = service.receive_hl7v2(_sample("ADT-A01-01.hl7"))
    assert result.ack_code == "AA"
    msa = _msa(result.acks[0])
    assert msa[1:3] == ["AA", "MSG00001"]
    message = result.message
    assert message is not None
    stored = service.store.get(message.id)
    assert stored.status is MessageStatus.PROCESSED
    assert stored.raw == _sample("ADT-A01-01.hl7")
    assert any(p.startswith("Patient/") for p in stored.produced)
    assert _count(repo, "Patient") == 1
    patient_ref = next(p for p in stored.produced if p.startswith("Patient/")).split("/_history")[0]
    found, total = service.store.search(MessageQuery(patient=patient_ref))
    assert total == 1 and found[0].id == message.id


def test_a_resend_is_answered_but_not_processed_twice(repo):
    service, _ = _service(repo)
    first = service.receive_hl7v2(_sample("ADT-A01-01.hl7"))
    resources = sum(repo.counts_by_type().values())
    again = service.receive_hl7v2(_sample("ADT-A01-01.hl7"))
    assert again.ack_code == "AA"
    assert again.message.id == first.message.id
    assert sum(repo.counts_by_type().values()) == resources
    _, total = service.store.search(MessageQuery())
    assert total == 1


def test_unknown_sender_is_kept_in_the_error_queue_and_rejected(repo):
    service, _ = _service(repo)
    raw = _sample("ADT-A01-01.hl7").replace(b"GHHSFacility", b"ElsewhereFacility", 1)
    result = service.receive_hl7v2(raw)
    assert result.ack_code == "AR"
    assert any(s.startswith("ERR") for s in result.acks[0].decode().split("\r"))
    stored = service.store.get(result.message.id)
    assert (stored.channel_id, stored.status) == ("unrouted", MessageStatus.ERROR)
    assert _count(repo, "Patient") == 0
    # a channel for that sender appears; reprocessing takes the message in
    service.put_channel(channel_from_config({
        "id": "elsewhere", "organization": "Organization/else", "transport": "mllp",
        "format": "hl7v2", "sending_facility": "ElsewhereFacility",
    }))
    again = service.reprocess(stored.id)
    assert (again.channel_id, again.status) == ("elsewhere", MessageStatus.PROCESSED)
    assert _count(repo, "Patient") == 1


def test_unparseable_input_is_stored_and_answered(repo):
    service, _ = _service(repo)
    result = service.receive_hl7v2(b"this is not HL7")
    assert result.ack_code in ("AR", "AE")
    assert result.acks and _msa(result.acks[0])[1] in ("AR", "AE")
    assert service.store.get(result.message.id).status is MessageStatus.ERROR


def test_unsupported_type_is_rejected_with_a_reason(repo):
    service, _ = _service(repo)
    raw = _sample("ADT-A01-01.hl7").replace(b"ADT^A01^ADT_A01", b"ZZZ^Z01^ZZZ_Z01", 1)
    result = service.receive_hl7v2(raw)
    assert result.ack_code == "AR"
    err = next(s for s in result.acks[0].decode().split("\r") if s.startswith("ERR"))
    assert "200" in err
    assert service.store.get(result.message.id).status is MessageStatus.ERROR


def test_database_failure_during_write_queues_the_message_and_answers_ae(repo):
    calls = {"n": 0}
    service, clock = _service(repo)
    real_submit = service.submit

    def flaky(bundle, before_commit):
        calls["n"] += 1
        if calls["n"] == 1:
            raise FhirError(Category.UNAVAILABLE, "database unavailable")
        return real_submit(bundle, before_commit)

    service.submit = flaky
    service.hl7v2.submit = flaky
    result = service.receive_hl7v2(_sample("ADT-A01-01.hl7"))
    assert result.ack_code == "AE"
    stored = service.store.get(result.message.id)
    assert stored.status is MessageStatus.QUEUED and stored.next_attempt_at
    assert _count(repo, "Patient") == 0
    assert service.run_due() == 0  # not yet time
    clock.now = stored.next_attempt_at
    assert service.run_due() == 1
    assert service.store.get(stored.id).status is MessageStatus.PROCESSED
    assert _count(repo, "Patient") == 1
    # the sender's resend after our AE is answered AA without a second write
    assert service.receive_hl7v2(_sample("ADT-A01-01.hl7")).ack_code == "AA"
    assert _count(repo, "Patient") == 1


def test_stopped_channel_answers_ae_and_stores_nothing(repo):
    service, _ = _service(repo)
    service.set_enabled("ghh", False)
    result = service.receive_hl7v2(_sample("ADT-A01-01.hl7"))
    assert result.ack_code == "AE"
    assert service.store.search(MessageQuery())[1] == 0
    service.set_enabled("ghh", True)
    assert service.receive_hl7v2(_sample("ADT-A01-01.hl7")).ack_code == "AA"


def test_counts_per_channel_and_hour(repo):
    service, _ = _service(repo)
    service.receive_hl7v2(_sample("ADT-A01-01.hl7"))
    service.receive_hl7v2(_sample("ADT-A01-01.hl7").replace(b"GHHSFacility", b"X", 1))
    rows = {r["channel"]: r for r in service.store.counts(since=0)}
    assert rows["ghh"]["received"] == 1 and rows["ghh"]["processed"] == 1
    assert rows["unrouted"]["errors"] == 1


def test_retention_purges_raw_of_finished_messages_only(repo):
    service, clock = _service(repo)
    done = service.receive_hl7v2(_sample("ADT-A01-01.hl7")).message
    clock.now += 91 * 24 * 3_600_000_000
    assert service.purge() == 1
    purged = service.store.get(done.id)
    assert purged.raw is None and purged.raw_purged_at is not None
    with pytest.raises(FhirError) as err:
        service.reprocess(done.id)
    assert err.value.category is Category.GONE


def test_component_sql_cannot_touch_fhir_tables(repo):
    with pytest.raises(ValueError), repo.transaction() as tx:
        tx.execute("DELETE FROM resources")
    with pytest.raises(ValueError):
        repo.query("SELECT * FROM idx_token")


@pytest.mark.parametrize("name", sorted(p.name for p in HL7V2_SAMPLES.glob("*.hl7"))
                         if HL7V2_SAMPLES.exists() else [])
def test_every_sample_gets_an_ack_and_a_store_row(tmp_path: Path, name: str) -> None:
    from huitong.store.engines import open_engine

    repo = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        service, _ = _service(repo)
        raw = _sample(name)
        result = service.receive_hl7v2(raw, channel_id="ghh")
        msh = raw.lstrip(b"\xef\xbb\xbf").splitlines()[0].decode().split("|")
        asks_none = msh[14:16] == ["NE", "NE"]  # MSH-15/16: never acknowledge
        assert bool(result.acks) is not asks_none, name
        assert result.ack_code in ("AA", "AE", "AR")
        stored = service.store.get(result.message.id)
        expected = MessageStatus.PROCESSED if result.ack_code == "AA" else MessageStatus.ERROR
        assert stored.status is expected, (name, stored.errors)
        if result.ack_code == "AE":
            # AE only for content errors the mapping names, never a crash
            assert stored.errors and stored.errors[0]["category"] != "internal", stored.errors
    finally:
        repo.close()

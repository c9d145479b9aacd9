"""The batched HL7 v2 intake (``IngestService.receive_hl7v2_batch``) on the real repository
(SQLite and PostgreSQL): a group of messages is stored in one commit and written in one
transaction, yet every message gets the answer it would get alone — one bad message gets
its own AE/AR and does not take the others down, resends and repeats inside the group are
never processed twice."""

from __future__ import annotations

import itertools

import orjson
import pytest
from ingest_clock import Clock

from huitong.config import Settings
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.ingest.channels import channel_from_config
from huitong.ingest.message_store import MessageQuery, MessageStatus
from huitong.ingest.service import IngestService
from huitong.server.bundle import run_transaction
from huitong.server.ingest_api import in_transaction
from huitong.server.request import ServerContext
from huitong.store import Repository


def _adt(control: str, mrn: str, facility: str = "COUNTY", kind: str = "ADT^A04^ADT_A01"
         ) -> bytes:
    return (
        f"MSH|^~\\&|HIS|{facility}|HUITONG|REGION|20261122083000+0800||{kind}|{control}|P|2.5\r"
        f"EVN|A04|20261122083000+0800\r"
        f"PID|1||{mrn}^^^COUNTY^MR||张^伟||19700101|M\r"
        f"PV1|1|O|||||||||||||||||V{mrn}^^^COUNTY^VN\r"
    ).encode()


class Recorder:
    """The real executor, counting how it was called; fails bundles naming ``poison``."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.alone = 0
        self.grouped = 0
        self.poison: str | None = None

    def _check(self, bundle: dict) -> None:
        if self.poison and self.poison in str(bundle):
            raise FhirError(Category.INVALID, "refused by the test / 测试拒绝")

    def submit(self, bundle, before_commit):
        self.alone += 1
        self._check(bundle)
        return run_transaction(self.ctx, bundle, before_commit)

    def submit_in(self, tx, bundle, before_commit):
        self.grouped += 1
        self._check(bundle)
        return run_transaction(in_transaction(self.ctx, tx), bundle, before_commit)


def _service(repo: Repository) -> tuple[IngestService, Recorder]:
    clock = Clock()
    ids = (f"id{i}" for i in itertools.count())
    ctx = ServerContext(repo, Settings.from_env({}, database_url="unused"), clock,
                        lambda: next(ids))
    rec = Recorder(ctx)
    service = IngestService(repo, rec.submit, clock, lambda: next(ids),
                            submit_in=rec.submit_in)
    service.put_channel(channel_from_config({
        "id": "county", "organization": "Organization/county", "transport": "mllp",
        "format": "hl7v2", "sending_facility": "COUNTY",
    }))
    return service, rec


def _patients(repo: Repository) -> int:
    return repo.search(parse_search("Patient", [("_summary", "count")])).total or 0


def _msa(ack: bytes) -> list[str]:
    return next(s for s in ack.decode().split("\r") if s.startswith("MSA")).split("|")


def test_a_group_is_written_in_one_transaction_with_each_message_answered(repo):
    service, rec = _service(repo)
    raws = [_adt(f"C{i}", f"M{i}") for i in range(5)]
    results = service.receive_hl7v2_batch(raws)
    assert [r.ack_code for r in results] == ["AA"] * 5
    assert [_msa(r.acks[0])[2] for r in results] == [f"C{i}" for i in range(5)]
    assert (rec.grouped, rec.alone) == (5, 0)
    assert _patients(repo) == 5
    for r in results:
        stored = service.store.get(r.message.id)
        assert stored.status is MessageStatus.PROCESSED and stored.attempts == 1
        assert any(p.startswith("Patient/") for p in stored.produced)
        assert service.store.patients_of(stored.id)  # indexed for the patient search


def test_one_bad_message_gets_its_own_answer_and_the_others_are_kept(repo):
    service, rec = _service(repo)
    rec.poison = "M2"
    results = service.receive_hl7v2_batch([_adt(f"C{i}", f"M{i}") for i in range(4)])
    assert [r.ack_code for r in results] == ["AA", "AA", "AR", "AA"]
    assert any(s.startswith("ERR") for s in results[2].acks[0].decode().split("\r"))
    assert _patients(repo) == 3
    statuses = [service.store.get(r.message.id).status for r in results]
    assert statuses == [MessageStatus.PROCESSED, MessageStatus.PROCESSED, MessageStatus.ERROR,
                        MessageStatus.PROCESSED]
    # Nothing of the rolled-back group attempt survived: each resource exactly once.
    assert sum(1 for _ in service.store.search(MessageQuery())[0]) == 4


@pytest.mark.parametrize(
    ("case", "raws", "codes", "stored", "patients"),
    [
        # a repeat inside the group is its resend: answered, processed once
        ("repeat", [_adt("C1", "M1"), _adt("C1", "M1"), _adt("C2", "M2")],
         ["AA", "AA", "AA"], 2, 2),
        # garbage and an unknown sender take the one-by-one path, the rest the group
        ("mixed", [b"not hl7 at all", _adt("C1", "M1"), _adt("C9", "M9", facility="ELSE")],
         ["AR", "AA", "AR"], 3, 1),
        # an unmapped type is stored and rejected; the group goes on
        ("unsupported", [_adt("C1", "M1", kind="ZZZ^Z01^ZZZ_Z01"), _adt("C2", "M2")],
         ["AR", "AA"], 2, 1),
    ],
)
def test_group_answers_match_one_by_one(repo, case, raws, codes, stored, patients):
    service, _ = _service(repo)
    results = service.receive_hl7v2_batch(raws)
    assert [r.ack_code for r in results] == codes, case
    assert service.store.search(MessageQuery())[1] == stored
    assert _patients(repo) == patients


def test_resends_of_processed_messages_are_not_written_again(repo):
    service, rec = _service(repo)
    first = service.receive_hl7v2_batch([_adt("C1", "M1"), _adt("C2", "M2")])
    again = service.receive_hl7v2_batch([_adt("C1", "M1"), _adt("C2", "M2"), _adt("C3", "M3")])
    assert [r.ack_code for r in again] == ["AA", "AA", "AA"]
    assert [r.message.id for r in again[:2]] == [r.message.id for r in first]
    assert _patients(repo) == 3
    # the resends were answered from the store; the one new message was written alone
    assert (rec.grouped, rec.alone) == (2, 1)


def test_database_failure_in_the_group_queues_every_message_with_ae(repo):
    service, rec = _service(repo)

    def down(tx, bundle, before_commit):
        raise FhirError(Category.UNAVAILABLE, "database unavailable")

    service.hl7v2.submit_in = down
    results = service.receive_hl7v2_batch([_adt("C1", "M1"), _adt("C2", "M2")])
    assert [r.ack_code for r in results] == ["AE", "AE"]
    assert rec.alone == 0  # no pointless one-by-one retry against a database that is away
    assert {service.store.get(r.message.id).status for r in results} == {MessageStatus.QUEUED}
    assert _patients(repo) == 0
    service.hl7v2.submit_in = rec.submit_in
    assert [r.ack_code for r in service.receive_hl7v2_batch(
        [_adt("C1", "M1"), _adt("C2", "M2")])] == ["AA", "AA"]
    assert _patients(repo) == 2


def test_a_group_takes_every_conditional_lock_before_its_first_message_postgres(
    pg_repo, postgres_url
):
    """Message by message, two groups in two server processes could each hold a key the
    other waits for (PostgreSQL then fails one after deadlock_timeout): a group takes all
    its messages' conditional locks together, in one order, before writing any of them."""
    import psycopg

    from huitong.server.bundle import conditional_locks

    service, rec = _service(pg_repo)
    service.hl7v2.lock_in = lambda tx, bundles: tx.lock_many(conditional_locks(bundles))
    held: list[int] = []
    seen: list[dict] = []
    url = postgres_url
    real = rec.submit_in

    def submit_in(tx, bundle, before_commit):
        if not seen:
            with psycopg.connect(url) as other:  # what the group's transaction holds now
                held.append(other.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())").fetchone()[0])
        seen.append(orjson.loads(orjson.dumps(bundle)))
        return real(tx, bundle, before_commit)

    service.hl7v2.submit_in = submit_in
    results = service.receive_hl7v2_batch([_adt(f"C{i}", f"M{i}") for i in range(4)])
    assert [r.ack_code for r in results] == ["AA"] * 4
    expected = conditional_locks(seen)
    assert len(expected) >= 8  # each message's Patient and Encounter are conditional
    assert held == [len(expected)]

"""The message store's batch statements against its one-message ones, on both engines and the
shared HL7 v2 samples: ``receive_many`` (one multi-row INSERT, on PostgreSQL one JSON
parameter) answers as ``receive`` called for each message in turn, and
``record_processed_many`` (one UPDATE, one DELETE, one INSERT) leaves the rows
``record_processed`` leaves for each mark."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ingest_clock import Clock

from huitong.ingest.message_store import (
    Inbound,
    MessageStatus,
    MessageStore,
    ProcessedMark,
    StoredMessage,
)
from huitong_testdata import HL7V2_SAMPLES


def _samples() -> list[tuple[str, str, bytes]]:
    """(sender, control id, raw) of each shared HL7 v2 sample, by MSH-3/MSH-4 and MSH-10."""
    if not HL7V2_SAMPLES.exists():
        pytest.skip(f"shared HL7 v2 samples not found at {HL7V2_SAMPLES}")
    out = []
    for path in sorted(HL7V2_SAMPLES.glob("*.hl7")):
        raw = path.read_bytes()
        msh = raw.replace(b"\n", b"\r").split(b"\r", 1)[0].decode("utf-8", "replace")
        fields = msh.split(msh[3]) if len(msh) > 3 else []
        if len(fields) > 9 and fields[9]:
            out.append((f"{fields[2]}|{fields[3]}", fields[9], raw))
    assert len(out) > 50  # the samples are there and readable
    return out


def _inbound(channel: str, samples: list[tuple[str, str, bytes]]) -> list[Inbound]:
    # Every seventh message deferred (enhanced mode), as the HL7 v2 intake marks them.
    return [Inbound(channel, sender, control, "hl7v2", raw, "utf-8", deferred=i % 7 == 3)
            for i, (sender, control, raw) in enumerate(samples)]


def _shape(message: StoredMessage) -> tuple[Any, ...]:
    """Everything of a stored message but what names its row (id, channel, times)."""
    return (message.sender, message.control_id, message.message_type, message.status,
            message.attempts, message.next_attempt_at is not None, message.processed_at,
            message.raw, message.raw_purged_at, message.encoding, message.ack_code,
            message.produced, message.warnings, message.errors, message.latency_us)


class Statements:
    """Counts the INSERTs into ingest_messages the store sends (through ``execute`` or
    ``execute_many``), to know which path a call took."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: MessageStore) -> None:
        self.inserts = 0
        repo = store.repo
        real = repo.transaction
        counter = self

        class Counted:
            def __init__(self, tx: Any) -> None:
                self._tx = tx

            def execute(self, sql: str, params: Any = ()) -> Any:
                counter.inserts += sql.startswith("INSERT INTO ingest_messages ")
                return self._tx.execute(sql, params)

            def execute_many(self, statements: Any) -> Any:
                counter.inserts += sum(s.startswith("INSERT INTO ingest_messages ")
                                       for s, _ in statements)
                return self._tx.execute_many(statements)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._tx, name)

        from contextlib import contextmanager

        @contextmanager
        def transaction(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with real(*args, **kwargs) as tx:
                yield Counted(tx)

        monkeypatch.setattr(repo, "transaction", transaction)


def _one_by_one(store: MessageStore, items: list[Inbound]) -> list[tuple[StoredMessage, bool]]:
    return [store.receive(i.channel_id, sender=i.sender, control_id=i.control_id,
                          message_type=i.message_type, raw=i.raw, encoding=i.encoding,
                          deferred=i.deferred) for i in items]


def test_receive_many_answers_as_receive(repo, monkeypatch):
    store = MessageStore(repo, Clock())
    samples = _samples()
    # Some messages were stored before (the group carries their resends), and the group
    # repeats some of its own messages (a sender that resent while we were busy).
    before, group = samples[::5], samples + samples[1:40:3]
    for channel in ("alone", "batch"):
        _one_by_one(store, _inbound(channel, before))
    expected = _one_by_one(store, _inbound("alone", group))
    statements = Statements(monkeypatch, store)
    got = store.receive_many(_inbound("batch", group))
    assert statements.inserts == 1  # the group went as one statement: the path under test
    assert len(got) == len(expected)
    # The samples reuse control ids: a key's message is the first raw stored under it.
    first_raw: dict[tuple[str, str], bytes] = {}
    for sender, control, raw in before + group:
        first_raw.setdefault((sender, control), raw)
    for n, ((e, e_new), (g, g_new)) in enumerate(zip(expected, got, strict=True)):
        assert g_new == e_new, n
        if g_new:  # built from what was inserted: it must be what a read finds
            assert _shape(g) == _shape(store.get(g.id)), n
        assert _shape(store.get(g.id)) == _shape(store.get(e.id)), n
        # each id is its own message's row
        assert store.get(g.id).raw == first_raw[group[n][:2]], n
    # New rows are numbered in arrival order, as one statement per message numbered them.
    new_ids = [g.id for g, new in got if new]
    assert new_ids == sorted(new_ids) and len(set(new_ids)) == len(new_ids)
    # A repeat inside the group is its first occurrence's message.
    first: dict[tuple[str, str], int] = {}
    for (sender, control, _), (g, _new) in zip(group, got, strict=True):
        assert first.setdefault((sender, control), g.id) == g.id


def test_receive_many_without_control_ids_answers_as_receive(repo, monkeypatch):
    """A message without a control id has no key to match a returned row by: such a group
    keeps one statement per message, with the same answers."""
    store = MessageStore(repo, Clock())
    samples = _samples()[:20]
    items = _inbound("batch", samples)
    items[4] = Inbound("batch", "no-id", None, "hl7v2", samples[4][2], "utf-8")
    items[9] = Inbound("batch", "no-id", None, "hl7v2", samples[4][2], "utf-8")
    expected = _one_by_one(store, [Inbound("alone", *vars_of(i)) for i in items])
    statements = Statements(monkeypatch, store)
    got = store.receive_many(items)
    # one statement per message but the repeats inside the group
    keys = {(i.sender, i.control_id) for i in items if i.control_id}
    assert statements.inserts == len(keys) + sum(not i.control_id for i in items)
    assert [new for _, new in got] == [new for _, new in expected]
    for (e, _), (g, _) in zip(expected, got, strict=True):
        assert _shape(store.get(g.id)) == _shape(store.get(e.id))


def vars_of(item: Inbound) -> tuple[Any, ...]:
    return (item.sender, item.control_id, item.message_type, item.raw, item.encoding,
            item.deferred)


def _marks(ids: list[int]) -> list[ProcessedMark]:
    """Marks of every kind: fresh or not, with and without patients (repeated ones too),
    warnings in both languages, no latency, filtered."""
    out = []
    for n, message_id in enumerate(ids):
        patients = [f"Patient/p{n % 3}", f"urn:oid:2.16.156.10011.1.3|1101011960030{n:05d}",
                    f"Patient/p{n % 3}"][: n % 4]
        out.append(ProcessedMark(
            message_id,
            produced=[f"Observation/o{n}/_history/1", "Device/d1/_history/1"][: n % 3],
            warnings=[{"reason": "duplicate", "en": "twice", "zh": "重复"}] if n % 5 == 1 else [],
            patients=patients, ack_code="AA" if n % 6 else "CA",
            latency_us=None if n % 4 == 2 else 1000 + n,
            status=MessageStatus.FILTERED if n % 9 == 4 else MessageStatus.PROCESSED,
            fresh=n % 2 == 0,
        ))
    return out


def test_record_processed_many_leaves_the_rows_record_processed_leaves(repo):
    store = MessageStore(repo, Clock())
    samples = _samples()
    rows = {}
    for channel in ("alone", "batch"):
        stored = store.receive_many(_inbound(channel, samples))
        rows[channel] = list(dict.fromkeys(m.id for m, _ in stored))  # each message once
        # Messages marked before (not fresh) have patient rows the new mark replaces.
        for message_id in rows[channel][1::2]:
            store.record_failure(message_id, errors=[{"en": "down", "zh": "不可用"}],
                                 transient=True, ack_code="AE",
                                 patients=["Patient/old", "Patient/p1"])
    with repo.transaction() as tx:
        for mark in _marks(rows["alone"]):
            store.record_processed(
                tx, mark.message_id, produced=mark.produced, warnings=mark.warnings,
                patients=mark.patients, ack_code=mark.ack_code, latency_us=mark.latency_us,
                status=mark.status, fresh=mark.fresh)
    with repo.transaction() as tx:
        store.record_processed_many(tx, _marks(rows["batch"]))
    processed_at = []
    for a, b in zip(rows["alone"], rows["batch"], strict=True):
        one, many = store.get(a), store.get(b)
        assert many.processed_at is not None
        processed_at.append(many.processed_at)
        assert _shape(many)[:6] + _shape(many)[7:] == _shape(one)[:6] + _shape(one)[7:]
        assert store.patients_of(b) == store.patients_of(a)
    assert processed_at == sorted(processed_at)  # one clock reading per mark, in order


def test_receive_many_of_large_messages_answers_as_receive(repo, monkeypatch):
    """A group whose raw content is large goes one statement per message (a server limit on
    one value or message must not refuse a group its messages alone would pass)."""
    from huitong.ingest import message_store

    store = MessageStore(repo, Clock())
    distinct = list({(sender, control): (sender, control, raw)
                     for sender, control, raw in _samples()}.values())
    samples = distinct[:12] + distinct[:2]  # two of them resent within the group
    monkeypatch.setattr(message_store, "_BATCH_RAW_BYTES",
                        sum(len(raw) for _, _, raw in distinct[:12]) - 1)
    items = _inbound("batch", samples)
    expected = _one_by_one(store, _inbound("alone", samples))
    statements = Statements(monkeypatch, store)
    got = store.receive_many(items)
    assert statements.inserts == len({(i.sender, i.control_id) for i in items})
    assert [new for _, new in got] == [new for _, new in expected]
    for (e, _), (g, _) in zip(expected, got, strict=True):
        assert _shape(store.get(g.id)) == _shape(store.get(e.id))

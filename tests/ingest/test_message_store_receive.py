"""``MessageStore.receive`` builds a new message from what it inserted instead of reading it
back after the commit (a round trip and a transaction per HL7 v2 message), and reads a
resend's row inside its own transaction: on both engines, the answers must be exactly what
a read of the row finds."""

from __future__ import annotations

from typing import Any

import pytest
from ingest_clock import Clock

from huitong.ingest.message_store import MessageStatus, MessageStore, StoredMessage


def _all(message: StoredMessage) -> tuple[Any, ...]:
    return (message.id, message.channel_id, message.received_at, message.sender,
            message.control_id, message.message_type, message.status, message.attempts,
            message.next_attempt_at, message.processed_at, message.raw, message.raw_purged_at,
            message.encoding, message.ack_code, message.produced, message.warnings,
            message.errors, message.latency_us)


def _no_reads(monkeypatch: pytest.MonkeyPatch, store: MessageStore) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("receive read the message back outside its transaction")

    monkeypatch.setattr(store.repo, "query", refuse)


@pytest.mark.parametrize("deferred", [False, True])
@pytest.mark.parametrize("control_id", ["C-1", None])
def test_a_new_message_is_what_a_read_finds(repo, monkeypatch, deferred, control_id):
    store = MessageStore(repo, Clock())
    raw = b"MSH|^~\\&|LAB|HOSP|||20250101||ORU^R01|C-1|P|2.5\r"
    with monkeypatch.context() as patch:
        _no_reads(patch, store)
        message, new = store.receive("lab", sender="LAB^HOSP", control_id=control_id,
                                     message_type="ORU^R01", raw=raw, encoding="utf-8",
                                     deferred=deferred)
    assert new
    assert _all(message) == _all(store.get(message.id))
    assert message.status is (MessageStatus.QUEUED if deferred else MessageStatus.RECEIVED)


def test_a_resend_answers_with_the_stored_message_as_it_is_now(repo, monkeypatch):
    store = MessageStore(repo, Clock())
    first, _ = store.receive("adt", sender="HIS^HOSP", control_id="A-7",
                             message_type="ADT^A01", raw=b"first", encoding="utf-8")
    # The first attempt failed for now: the resend must see the queued row, not the new one.
    store.record_failure(first.id, errors=[{"code": "207"}], transient=True, ack_code="AE")
    with monkeypatch.context() as patch:
        _no_reads(patch, store)
        again, new = store.receive("adt", sender="HIS^HOSP", control_id="A-7",
                                   message_type="ADT^A01", raw=b"second", encoding="latin-1")
    assert not new
    assert _all(again) == _all(store.get(first.id))
    assert again.raw == b"first" and again.status is MessageStatus.QUEUED
    assert again.attempts == 1 and again.errors == [{"code": "207"}]

"""The message store: every inbound message, raw, written durably before it is acknowledged.

A message moves through statuses::

    received ──> processed          (its resources committed)
             ├─> filtered           (nothing to do by design, e.g. a test message)
             ├─> queued ──> ...     (transient failure: retried with back-off)
             └─> error              (permanent failure, or retries exhausted: the error queue)

``(channel, sender, control id)`` is unique: a message resent by its sender is the same
message, so it is never processed twice (the resend gets the answer of the first). Raw
content is kept for the channel's retention period, then purged (the row, its status and its
produced resources stay). Operators search messages by status, channel, time, control id
and patient, read the raw input beside what it produced, and reprocess.

Everything here runs through the repository's component-SQL seam (``Transaction.execute``,
``Repository.query``): the same statements on SQLite and PostgreSQL.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from huitong.clock import Clock
from huitong.fhir.errors import Category, FhirError
from huitong.ingest.channels import Channel, channel_from_config
from huitong.store.repository import Repository, Transaction

__all__ = [
    "ChannelState",
    "Inbound",
    "MessageQuery",
    "MessageStatus",
    "MessageStore",
    "ProcessedMark",
    "StoredMessage",
    "retry_delay_us",
]

_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US


class MessageStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    FILTERED = "filtered"
    QUEUED = "queued"
    ERROR = "error"


def retry_delay_us(attempts: int) -> int:
    """Back-off before retry number ``attempts`` + 1: 2 s, 4 s, 8 s … capped at 10 minutes."""
    return min(2 ** max(attempts, 1), 600) * 1_000_000


@dataclass(frozen=True, slots=True)
class ChannelState:
    channel: Channel
    enabled: bool
    updated_at: int


@dataclass(slots=True)
class StoredMessage:
    id: int
    channel_id: str
    received_at: int
    sender: str
    control_id: str | None
    message_type: str | None
    status: MessageStatus
    attempts: int = 0
    next_attempt_at: int | None = None
    processed_at: int | None = None
    raw: bytes | None = None
    raw_purged_at: int | None = None
    encoding: str | None = None
    ack_code: str | None = None
    produced: list[str] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    latency_us: int | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON an operator sees in a message list (no raw content)."""
        return {
            "id": self.id, "channel": self.channel_id, "receivedAt": self.received_at,
            "sender": self.sender, "controlId": self.control_id, "type": self.message_type,
            "status": str(self.status), "attempts": self.attempts, "ack": self.ack_code,
            "produced": len(self.produced), "errors": len(self.errors),
            "warnings": len(self.warnings), "latencyUs": self.latency_us,
        }


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message to store raw (:meth:`MessageStore.receive_many`)."""

    channel_id: str
    sender: str
    control_id: str | None
    message_type: str | None
    raw: bytes
    encoding: str | None = None
    # Stored as ``queued`` and due now: processed later by the retry worker (enhanced-mode
    # messages on a channel with a return address answer CA as soon as they are stored).
    deferred: bool = False


@dataclass(frozen=True, slots=True)
class ProcessedMark:
    """One message to mark processed (:meth:`MessageStore.record_processed_many`); the
    fields are :meth:`MessageStore.record_processed`'s arguments."""

    message_id: int
    produced: Sequence[str]
    warnings: Sequence[dict[str, Any]]
    patients: Iterable[str]
    ack_code: str
    latency_us: int | None
    status: MessageStatus = MessageStatus.PROCESSED
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Filters for :meth:`MessageStore.search`; ``patient`` is a Patient id or an
    identifier ``system|value`` the message carried."""

    status: MessageStatus | None = None
    channel: str | None = None
    since: int | None = None
    until: int | None = None
    control_id: str | None = None
    patient: str | None = None
    message_type: str | None = None
    count: int = 50
    offset: int = 0


_COLUMNS = (
    "id, channel_id, received_at, sender, control_id, message_type, status, attempts, "
    "next_attempt_at, processed_at, raw, raw_purged_at, encoding, ack_code, produced, "
    "warnings, errors, latency_us"
)


_INSERT = (
    "INSERT INTO ingest_messages (channel_id, received_at, sender, control_id, message_type, "
    "status, raw, encoding, next_attempt_at) VALUES "
)
_VALUES_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ON_CONFLICT = " ON CONFLICT (channel_id, sender, control_id) DO NOTHING"
_RETURNING = " RETURNING id, channel_id, sender, control_id"
_INSERT_FROM_JSON = (
    "INSERT INTO ingest_messages (channel_id, received_at, sender, control_id, message_type, "
    "status, raw, encoding, next_attempt_at) SELECT r->>0, (r->>1)::bigint, r->>2, r->>3, "
    "r->>4, r->>5, decode(r->>6, 'base64'), r->>7, (r->>8)::bigint "
    "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS t(r, i) ORDER BY i"
    + _ON_CONFLICT + _RETURNING
)
_UPDATE_SET = (
    "errors = NULL, next_attempt_at = NULL, attempts = ingest_messages.attempts + 1"
)
_UPDATE_FROM_JSON = (
    "UPDATE ingest_messages SET status = r->>1, processed_at = (r->>2)::bigint, "
    "produced = r->>3, warnings = r->>4, ack_code = r->>5, latency_us = (r->>6)::bigint, "
    + _UPDATE_SET + " FROM jsonb_array_elements(?::jsonb) AS t(r) "
    "WHERE ingest_messages.id = (r->>0)::bigint"
)
_UPDATE_ROW = "(?, ?, ?, ?, ?, ?, ?)"
# The casts type a column of NULLs (no latency) where VALUES would leave it untyped.
_UPDATE_FROM_VALUES = (
    "UPDATE ingest_messages SET status = v.column2, "
    "processed_at = CAST(v.column3 AS BIGINT), produced = v.column4, warnings = v.column5, "
    "ack_code = v.column6, latency_us = CAST(v.column7 AS BIGINT), "
    + _UPDATE_SET + " FROM (VALUES {}) AS v WHERE ingest_messages.id = v.column1"
)
_PATIENTS_FROM_JSON = (
    "INSERT INTO ingest_message_patients (message_id, patient) "
    "SELECT (r->>0)::bigint, r->>1 FROM jsonb_array_elements(?::jsonb) AS t(r)"
)
# Raw bytes of a group stored in one statement at most (devices send a few hundred bytes
# a reading); a larger group goes one statement per message.
_BATCH_RAW_BYTES = 8 * 1024 * 1024
# Rows per multi-row VALUES statement (SQLite): at most 9 parameters a row stays far
# below its 32,766 bind parameters.
_ROWS_PER_STATEMENT = 500


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_or_none(rows: Any) -> str | None:
    """``rows`` as one JSON parameter, or None when a value cannot be JSON (a string with a
    lone surrogate): the caller then binds the values one by one, as it always did, so
    such a value fails, or not, exactly as before."""
    try:
        return _json(rows)
    except orjson.JSONEncodeError:
        return None


def _in_chunks(
    run: Callable[[str, Sequence[Any]], Any], template: str, placeholder: str,
    rows: Sequence[Sequence[Any]],
) -> list[Any]:
    """``run`` the statement ``template`` (its ``{}`` the list of rows) for ``rows``,
    ``_ROWS_PER_STATEMENT`` at a time; the rows the statements returned, in order."""
    out: list[Any] = []
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        text = template.format(", ".join([placeholder] * len(chunk)))
        out += run(text, [v for r in chunk for v in r]) or []
    return out


def _loads(text: Any) -> Any:
    return orjson.loads(text) if text else []


def _message(row: Sequence[Any]) -> StoredMessage:
    raw = row[10]
    return StoredMessage(
        id=int(row[0]), channel_id=row[1], received_at=int(row[2]), sender=row[3],
        control_id=row[4], message_type=row[5], status=MessageStatus(row[6]),
        attempts=int(row[7]), next_attempt_at=row[8], processed_at=row[9],
        raw=bytes(raw) if raw is not None else None, raw_purged_at=row[11], encoding=row[12],
        ack_code=row[13], produced=_loads(row[14]), warnings=_loads(row[15]),
        errors=_loads(row[16]), latency_us=row[17],
    )


class MessageStore:
    """Channels and messages on the repository's database."""

    def __init__(self, repo: Repository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    # -- channels ----------------------------------------------------------------------
    def put_channel(self, channel: Channel, *, enabled: bool | None = None) -> ChannelState:
        """Create or replace a channel (its enabled flag kept unless given)."""
        now = self.clock()
        flag = channel.enabled if enabled is None else enabled
        with self.repo.transaction() as tx:
            tx.execute(
                "INSERT INTO ingest_channels (id, config, enabled, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_at = "
                "excluded.updated_at" + (", enabled = excluded.enabled" if enabled is not None
                                          else ""),
                (channel.id, _json(channel.to_config()), int(flag), now),
            )
            row = tx.execute("SELECT enabled FROM ingest_channels WHERE id = ?", (channel.id,))
        return ChannelState(channel, bool(row[0][0]), now)

    def channels(self) -> list[ChannelState]:
        rows = self.repo.query(
            "SELECT config, enabled, updated_at FROM ingest_channels ORDER BY id"
        )
        return [ChannelState(channel_from_config(orjson.loads(c)), bool(e), int(u))
                for c, e, u in rows]

    def channel(self, channel_id: str) -> ChannelState:
        rows = self.repo.query(
            "SELECT config, enabled, updated_at FROM ingest_channels WHERE id = ?", (channel_id,)
        )
        if not rows:
            raise FhirError(
                Category.NOT_FOUND,
                f"no channel '{channel_id}' / 没有名为“{channel_id}”的通道",
            )
        config, enabled, updated = rows[0]
        return ChannelState(channel_from_config(orjson.loads(config)), bool(enabled), int(updated))

    def set_enabled(self, channel_id: str, enabled: bool) -> ChannelState:
        self.channel(channel_id)  # NOT_FOUND first
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE ingest_channels SET enabled = ?, updated_at = ? WHERE id = ?",
                (int(enabled), self.clock(), channel_id),
            )
        return self.channel(channel_id)

    # -- messages: the write side ----------------------------------------------------------
    def receive(
        self,
        channel_id: str,
        *,
        sender: str,
        control_id: str | None,
        message_type: str | None,
        raw: bytes,
        encoding: str | None = None,
        deferred: bool = False,
    ) -> tuple[StoredMessage, bool]:
        """Store a message raw (committed before this returns). Returns the stored message
        and whether it is new; a resend (same channel, sender and control id) returns the
        first one untouched. ``deferred``: see :attr:`Inbound.deferred`."""
        now = self.clock()
        status = MessageStatus.QUEUED if deferred else MessageStatus.RECEIVED
        with self.repo.transaction() as tx:
            rows = tx.execute(
                "INSERT INTO ingest_messages (channel_id, received_at, sender, control_id, "
                "message_type, status, raw, encoding, next_attempt_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (channel_id, sender, control_id) DO NOTHING RETURNING id",
                (channel_id, now, sender, control_id or None, message_type,
                 str(status), raw, encoding, now if deferred else None),
            )
            if rows:
                # What was just inserted is known: built here rather than read back (a read
                # after the commit cost every message a round trip and a transaction).
                return StoredMessage(
                    id=int(rows[0][0]), channel_id=channel_id, received_at=now, sender=sender,
                    control_id=control_id or None, message_type=message_type, status=status,
                    next_attempt_at=now if deferred else None, raw=bytes(raw),
                    encoding=encoding,
                ), True
            # A resend: its current state (read with its row) decides the answer.
            found = tx.execute(
                f"SELECT {_COLUMNS} FROM ingest_messages WHERE channel_id = ? AND sender = ? "
                "AND control_id = ?",
                (channel_id, sender, control_id),
            )
        return _message(found[0]), False

    def receive_many(self, items: Sequence[Inbound]) -> list[tuple[StoredMessage, bool]]:
        """Store several messages raw in ONE committed transaction (the batched intake):
        one commit for the group instead of one per message. Same answers as
        :meth:`receive` for each item, in order; a key repeated inside ``items`` is new only
        the first time (the later ones are its resends). Messages the group just stored are
        built from what was inserted, so no read follows the commit."""
        now = self.clock()
        out: list[tuple[StoredMessage, bool]] = []
        seen: dict[tuple[str, str, str], int] = {}
        known: list[int] = []  # positions whose row existed before: read after commit
        repeats: list[tuple[int, int]] = []  # (position, position of its first occurrence)
        with self.repo.transaction() as tx:
            # The inserts go together (one multi-row statement), each row returning its id.
            firsts: list[tuple[int, Inbound, MessageStatus]] = []
            for item in items:
                key = (item.channel_id, item.sender, item.control_id or "")
                if item.control_id and key in seen:
                    repeats.append((len(out), seen[key]))
                    out.append(None)  # type: ignore[arg-type]  # its first one's, below
                    continue
                if item.control_id:
                    seen[key] = len(out)
                status = MessageStatus.QUEUED if item.deferred else MessageStatus.RECEIVED
                firsts.append((len(out), item, status))
                out.append(None)  # type: ignore[arg-type]  # filled below
            inserted = self._insert_many(tx, now, [(item, status) for _, item, status in firsts])
            for (position, item, status), rows in zip(firsts, inserted, strict=True):
                if rows:
                    out[position] = (StoredMessage(
                        id=int(rows[0][0]), channel_id=item.channel_id, received_at=now,
                        sender=item.sender, control_id=item.control_id or None,
                        message_type=item.message_type, status=status,
                        attempts=0, next_attempt_at=now if item.deferred else None,
                        processed_at=None, raw=item.raw,
                        raw_purged_at=None, encoding=item.encoding), True)
                    continue
                found = tx.execute(
                    "SELECT id FROM ingest_messages WHERE channel_id = ? AND sender = ? "
                    "AND control_id = ?",
                    (item.channel_id, item.sender, item.control_id),
                )
                known.append(position)
                out[position] = (StoredMessage(
                    id=int(found[0][0]), channel_id=item.channel_id, received_at=now,
                    sender=item.sender, control_id=item.control_id, message_type=None,
                    status=MessageStatus.RECEIVED, attempts=0, next_attempt_at=None,
                    processed_at=None, raw=None, raw_purged_at=None), False)
        for position in known:  # resends: their current state decides their answer
            out[position] = (self.get(out[position][0].id), False)
        for position, first in repeats:
            out[position] = (out[first][0], False)
        return out

    def _insert_many(self, tx: Transaction, now: int,
                     items: Sequence[tuple[Inbound, MessageStatus]]) -> list[list[Any]]:
        """Insert ``items`` (no key repeated among them); for each, in order, the rows of
        its ``RETURNING id``: ``[(id,)]`` when inserted, ``[]`` when its key was already
        stored.

        Items that all carry a control id go in one statement: each statement costs the
        client and the server far more than a row does (a broker batch of 100 device
        readings was 100 statements). On PostgreSQL the rows travel as one JSON parameter
        (a statement with hundreds of placeholders is re-parsed by psycopg at every call
        and never prepared), elsewhere as a multi-row VALUES. Their ``RETURNING`` rows are
        matched back by key, which a control id makes unique; rows are inserted in item
        order, so ids still follow arrival order. Without a control id a row has no key to
        match it by (NULL never conflicts), so such a group keeps one statement per item; so
        does a group of large messages (HL7 v2 with embedded documents), whose raw content
        in one statement could pass the server's limits on one value or one message."""
        def row(item: Inbound, status: MessageStatus) -> tuple[Any, ...]:
            return (item.channel_id, now, item.sender, item.control_id or None,
                    item.message_type, str(status), item.raw, item.encoding,
                    now if item.deferred else None)

        if (not all(item.control_id for item, _ in items)
                or sum(len(item.raw or b"") for item, _ in items) > _BATCH_RAW_BYTES):
            return tx.execute_many([(_INSERT + _VALUES_ROW + _ON_CONFLICT + " RETURNING id",
                                     row(item, status)) for item, status in items])
        returned: list[tuple[Any, ...]] = []
        document = None
        if self.repo.dialect == "postgresql":
            document = _json_or_none([
                (item.channel_id, now, item.sender, item.control_id, item.message_type,
                 str(status), None if item.raw is None else b64encode(item.raw).decode(),
                 item.encoding, now if item.deferred else None)
                for item, status in items])
        if document is not None:
            returned = tx.execute(_INSERT_FROM_JSON, (document,))
        else:
            returned = _in_chunks(tx.execute, _INSERT + "{}" + _ON_CONFLICT + _RETURNING,
                                  _VALUES_ROW, [row(item, status) for item, status in items])
        ids = {(c, s, k): int(i) for i, c, s, k in returned}
        out: list[list[Any]] = []
        for item, _ in items:
            found = ids.get((item.channel_id, item.sender, str(item.control_id)))
            out.append([] if found is None else [(found,)])
        return out

    def record_processed(
        self,
        tx: Transaction,
        message_id: int,
        *,
        produced: Sequence[str],
        warnings: Sequence[dict[str, Any]],
        patients: Iterable[str],
        ack_code: str,
        latency_us: int | None,
        status: MessageStatus = MessageStatus.PROCESSED,
        fresh: bool = False,
    ) -> None:
        """Mark a message processed inside ``tx`` — the transaction that wrote its resources,
        so the status and the data commit together. ``fresh``: the message was never
        attempted before, so it has no patient rows to replace (one statement fewer)."""
        now = self.clock()
        # Deferred: nothing reads their answers, and a batch of messages marked processed
        # then travels with the commit instead of costing round trips each.
        tx.execute_later(
            "UPDATE ingest_messages SET status = ?, processed_at = ?, produced = ?, "
            "warnings = ?, errors = NULL, ack_code = ?, latency_us = ?, next_attempt_at = NULL, "
            "attempts = attempts + 1 WHERE id = ?",
            (str(status), now, _json(list(produced)), _json(list(warnings)), ack_code,
             latency_us, message_id),
        )
        self._index_patients(tx, message_id, patients, replace=not fresh)

    def record_processed_many(self, tx: Transaction, marks: Sequence[ProcessedMark]) -> None:
        """:meth:`record_processed` of several messages inside ``tx``, in a fixed number of
        statements instead of two or three per message (a broker batch of device readings
        is marked processed in the transaction that writes it): one UPDATE of them all, one
        DELETE of the patient rows of those not ``fresh``, one INSERT of all their patient
        rows (on PostgreSQL each with its rows as one JSON parameter, as
        :meth:`_insert_many`). The rows end up as with :meth:`record_processed` called for
        each mark in order. ``marks`` must not name a message twice."""
        if not marks:
            return
        updates: list[tuple[Any, ...]] = []
        stale: list[int] = []
        patient_rows: list[tuple[int, str]] = []
        for m in marks:
            # One clock reading per message, as record_processed takes (processed_at
            # stays distinct and increasing in the order the messages are marked).
            updates.append((m.message_id, str(m.status), self.clock(), _json(list(m.produced)),
                            _json(list(m.warnings)), m.ack_code, m.latency_us))
            if not m.fresh:
                stale.append(m.message_id)
            patient_rows += [(m.message_id, patient) for patient in sorted(set(m.patients))]
        postgres = self.repo.dialect == "postgresql"
        document = _json_or_none(updates) if postgres else None
        # Deferred, as record_processed's: nothing reads their answers.
        if document is not None:
            tx.execute_later(_UPDATE_FROM_JSON, (document,))
        else:  # VALUES columns are named column1..column7
            _in_chunks(tx.execute_later, _UPDATE_FROM_VALUES, _UPDATE_ROW, updates)
        _in_chunks(tx.execute_later,
                   "DELETE FROM ingest_message_patients WHERE message_id IN ({})",
                   "?", [(message_id,) for message_id in stale])
        if not patient_rows:
            return
        document = _json_or_none(patient_rows) if postgres else None
        if document is not None:
            tx.execute_later(_PATIENTS_FROM_JSON, (document,))
        else:
            _in_chunks(tx.execute_later,
                       "INSERT INTO ingest_message_patients (message_id, patient) VALUES {}",
                       "(?, ?)", patient_rows)

    def record_failure(
        self,
        message_id: int,
        *,
        errors: Sequence[dict[str, Any]],
        transient: bool,
        ack_code: str,
        max_attempts: int = 8,
        patients: Iterable[str] = (),
        on_final: Callable[[Transaction], None] | None = None,
    ) -> StoredMessage:
        """A failed attempt. Transient failures are queued for a retry with back-off until
        ``max_attempts``; permanent ones (and exhausted retries) land in the error queue.
        ``on_final(tx)`` runs in the same transaction when the failure is final (the
        enhanced-mode application ACK is owed from then on)."""
        current = self.get(message_id)
        attempts = current.attempts + 1
        now = self.clock()
        retry = transient and attempts < max_attempts
        status = MessageStatus.QUEUED if retry else MessageStatus.ERROR
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE ingest_messages SET status = ?, attempts = ?, errors = ?, ack_code = ?, "
                "next_attempt_at = ?, processed_at = ? WHERE id = ?",
                (str(status), attempts, _json(list(errors)), ack_code,
                 now + retry_delay_us(attempts) if retry else None, now, message_id),
            )
            self._index_patients(tx, message_id, patients)
            if on_final is not None and not retry:
                on_final(tx)
        return self.get(message_id)

    def _index_patients(self, tx: Transaction, message_id: int, patients: Iterable[str],
                        *, replace: bool = True) -> None:
        wanted = sorted(set(patients))
        if replace:
            tx.execute_later("DELETE FROM ingest_message_patients WHERE message_id = ?",
                             (message_id,))
        if wanted:
            # One statement for all of them: each statement costs more than the row.
            tx.execute_later(
                "INSERT INTO ingest_message_patients (message_id, patient) VALUES "
                + ", ".join(["(?, ?)"] * len(wanted)),
                [v for patient in wanted for v in (message_id, patient)],
            )

    def requeue(self, message_ids: Sequence[int]) -> int:
        """Send messages back for processing now (after a mapping fix). Returns how many."""
        if not message_ids:
            return 0
        marks = ", ".join("?" * len(message_ids))
        with self.repo.transaction() as tx:
            rows = tx.execute(
                f"UPDATE ingest_messages SET status = ?, next_attempt_at = ? "
                f"WHERE id IN ({marks}) AND raw IS NOT NULL RETURNING id",
                (str(MessageStatus.QUEUED), self.clock(), *message_ids),
            )
        return len(rows)

    def due(self, limit: int = 100, *, stale_after_us: int = 30_000_000) -> list[int]:
        """Messages to (re)process now, oldest first: queued ones whose retry time has come,
        and ones still ``received`` well after arrival (the process that stored them died
        before finishing; processing is idempotent, so taking one twice is harmless)."""
        now = self.clock()
        rows = self.repo.query(
            "SELECT id FROM ingest_messages WHERE (status = ? AND next_attempt_at <= ?) "
            "OR (status = ? AND received_at <= ?) ORDER BY id LIMIT ?",
            (str(MessageStatus.QUEUED), now, str(MessageStatus.RECEIVED),
             now - stale_after_us, limit),
        )
        return [int(r[0]) for r in rows]

    def purge_raw(self, retention_days: dict[str, int], default_days: int) -> int:
        """Drop the raw content of finished messages older than their channel's retention
        (``retention_days`` per channel id, else ``default_days``). Unfinished messages keep
        theirs: they still need it. Returns how many were purged."""
        now = self.clock()
        purged = 0
        finished = (str(MessageStatus.PROCESSED), str(MessageStatus.FILTERED),
                    str(MessageStatus.ERROR))
        channel_ids = [r[0] for r in self.repo.query(
            "SELECT DISTINCT channel_id FROM ingest_messages WHERE raw IS NOT NULL")]
        with self.repo.transaction() as tx:
            for cid in channel_ids:
                cutoff = now - retention_days.get(cid, default_days) * _DAY_US
                rows = tx.execute(
                    "UPDATE ingest_messages SET raw = NULL, raw_purged_at = ? "
                    "WHERE channel_id = ? AND received_at < ? AND raw IS NOT NULL "
                    "AND status IN (?, ?, ?) RETURNING id",
                    (now, cid, cutoff, *finished),
                )
                purged += len(rows)
        return purged

    # -- messages: the read side --------------------------------------------------------
    def get(self, message_id: int) -> StoredMessage:
        rows = self.repo.query(f"SELECT {_COLUMNS} FROM ingest_messages WHERE id = ?",
                               (message_id,))
        if not rows:
            raise FhirError(Category.NOT_FOUND,
                            f"no message {message_id} / 没有编号为 {message_id} 的消息")
        return _message(rows[0])

    def patients_of(self, message_id: int) -> list[str]:
        rows = self.repo.query(
            "SELECT patient FROM ingest_message_patients WHERE message_id = ? ORDER BY patient",
            (message_id,),
        )
        return [r[0] for r in rows]

    def patients_of_many(self, message_ids: Sequence[int]) -> list[str]:
        """The patients (``Patient/<id>`` and identifiers) any of ``message_ids`` concerns,
        each once, in one statement per 500 ids (an operator's listing is audited with them)."""
        wanted = sorted(set(message_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.repo.query(
                "SELECT DISTINCT patient FROM ingest_message_patients WHERE message_id IN "
                f"({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update(r[0] for r in rows)
        return sorted(found)

    def search(self, q: MessageQuery) -> tuple[list[StoredMessage], int]:
        """Messages matching ``q``, newest first, with the total count."""
        conds: list[str] = []
        params: list[Any] = []
        for column, value in (("status", q.status and str(q.status)), ("channel_id", q.channel),
                              ("control_id", q.control_id), ("message_type", q.message_type)):
            if value:
                conds.append(f"{column} = ?")
                params.append(value)
        if q.since is not None:
            conds.append("received_at >= ?")
            params.append(q.since)
        if q.until is not None:
            conds.append("received_at < ?")
            params.append(q.until)
        if q.patient:
            conds.append("id IN (SELECT message_id FROM ingest_message_patients WHERE patient = ?)")
            params.append(q.patient)
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        total = int(self.repo.query(f"SELECT COUNT(*) FROM ingest_messages{where}", params)[0][0])
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM ingest_messages{where} ORDER BY received_at DESC, id DESC "
            f"LIMIT ? OFFSET ?",
            [*params, max(0, min(q.count, 1000)), max(0, q.offset)],
        )
        return [_message(r) for r in rows], total

    def counts(self, *, since: int, channel: str | None = None) -> list[dict[str, Any]]:
        """Per channel and hour since ``since``: received, processed, filtered, errors,
        queued, and the mean and max latency of processed messages (µs)."""
        where = "received_at >= ?"
        params: list[Any] = [since]
        if channel:
            where += " AND channel_id = ?"
            params.append(channel)
        rows = self.repo.query(
            f"SELECT channel_id, (received_at / {_HOUR_US}) * {_HOUR_US} AS hour, "
            "COUNT(*), "
            "SUM(CASE WHEN status = 'processed' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'filtered' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), "
            "AVG(latency_us), MAX(latency_us) "
            f"FROM ingest_messages WHERE {where} GROUP BY channel_id, hour "
            "ORDER BY channel_id, hour",
            params,
        )
        return [
            {"channel": c, "hour": int(h), "received": int(n), "processed": int(p or 0),
             "filtered": int(f or 0), "errors": int(e or 0), "queued": int(qd or 0),
             "meanLatencyUs": round(float(avg)) if avg is not None else None,
             "maxLatencyUs": int(mx) if mx is not None else None}
            for c, h, n, p, f, e, qd, avg, mx in rows
        ]

    def totals(self) -> list[tuple[str, str, int]]:
        """(channel, status, count) over all time: the Prometheus counters' source."""
        rows = self.repo.query(
            "SELECT channel_id, status, COUNT(*) FROM ingest_messages "
            "GROUP BY channel_id, status ORDER BY channel_id, status"
        )
        return [(c, s, int(n)) for c, s, n in rows]

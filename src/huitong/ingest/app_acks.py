"""Enhanced-mode application ACKs owed to a sender's return address, and their delivery.

HL7 v2.8 chapter 2, section 2.9.3 (enhanced acknowledgment mode): the receiver answers the
*accept* ACK (CA/CE/CR) on the inbound connection as soon as the message is in safe storage,
and the *application* ACK (AA/AE/AR), when MSH-16 asks for one, after processing — here over
a NEW MLLP connection to the return address configured on the channel (``ack_host`` /
``ack_port``). A channel without a return address keeps answering both on the inbound
connection, after processing (:mod:`huitong.ingest.hl7v2_intake`).

Durability: an application ACK is written to ``ingest_app_acks`` in the transaction that
gives its message its final status (processed, or error), so a crash between the commit and
the send loses nothing: the retry worker (``IngestService.deliver_app_acks``, run by the
server's retry loop) sends whatever is ``pending`` and due, with the message store's
back-off (2 s, 4 s, 8 s … 10 min) between tries. After the channel's ``max_attempts`` tries
it is ``undelivered``: listed for operators (``GET /api/ingest/app-acks``) and re-armed by
them (``POST /api/ingest/app-acks/{id}/retry``) or by the sender resending the message.

"Delivered" means the framed ACK was written to a connection the sender's system accepted
and the connection was closed. The ACK's own MSH-15/16 are ``NE`` (it asks for no
acknowledgement of itself), so no answer is awaited. Log lines carry ids, addresses and error
kinds, never the payload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from huitong.clock import Clock
from huitong.fhir.errors import Category, FhirError
from huitong.ingest.message_store import retry_delay_us
from huitong.ingest.mllp.client import MllpClient
from huitong.store.repository import Repository, Transaction

__all__ = ["AppAck", "AppAckOutbox", "AppAckStatus", "deliver_due"]

log = logging.getLogger("huitong.ingest")

_COLUMNS = ("id, message_id, channel_id, host, port, ack_code, payload, status, attempts, "
            "max_attempts, next_attempt_at, created_at, delivered_at, last_error")


class AppAckStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


@dataclass(frozen=True, slots=True)
class AppAck:
    id: int
    message_id: int
    channel_id: str
    host: str
    port: int
    ack_code: str
    payload: bytes
    status: AppAckStatus
    attempts: int
    max_attempts: int
    next_attempt_at: int | None
    created_at: int
    delivered_at: int | None
    last_error: str | None

    def summary(self) -> dict[str, Any]:
        """What an operator sees (no payload: it is the sender's own message's answer)."""
        return {
            "id": self.id, "message": self.message_id, "channel": self.channel_id,
            "address": f"{self.host}:{self.port}", "ack": self.ack_code,
            "status": str(self.status), "attempts": self.attempts,
            "maxAttempts": self.max_attempts, "nextAttemptAt": self.next_attempt_at,
            "createdAt": self.created_at, "deliveredAt": self.delivered_at,
            "lastError": self.last_error,
        }


def _ack(row: Sequence[Any]) -> AppAck:
    return AppAck(
        id=int(row[0]), message_id=int(row[1]), channel_id=row[2], host=row[3],
        port=int(row[4]), ack_code=row[5], payload=bytes(row[6]),
        status=AppAckStatus(row[7]), attempts=int(row[8]), max_attempts=int(row[9]),
        next_attempt_at=row[10], created_at=int(row[11]), delivered_at=row[12],
        last_error=row[13],
    )


class AppAckOutbox:
    """The ``ingest_app_acks`` table. ``retry_delay`` maps a try count to the wait (µs)
    before the next try (the message store's back-off by default)."""

    def __init__(self, repo: Repository, clock: Clock,
                 retry_delay: Callable[[int], int] = retry_delay_us) -> None:
        self.repo = repo
        self.clock = clock
        self.retry_delay = retry_delay

    def enqueue(self, tx: Transaction, *, message_id: int, channel_id: str,
                address: tuple[str, int], ack_code: str, payload: bytes,
                max_attempts: int) -> None:
        """Owe ``payload`` to ``address``, inside ``tx`` (the transaction that records the
        message's final status). A message reprocessed later replaces its earlier ACK."""
        now = self.clock()
        tx.execute(
            "INSERT INTO ingest_app_acks (message_id, channel_id, host, port, ack_code, "
            "payload, status, attempts, max_attempts, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) "
            "ON CONFLICT (message_id) DO UPDATE SET channel_id = excluded.channel_id, "
            "host = excluded.host, port = excluded.port, ack_code = excluded.ack_code, "
            "payload = excluded.payload, status = excluded.status, attempts = 0, "
            "max_attempts = excluded.max_attempts, next_attempt_at = excluded.next_attempt_at, "
            "created_at = excluded.created_at, delivered_at = NULL, last_error = NULL",
            (message_id, channel_id, address[0], address[1], ack_code, payload,
             str(AppAckStatus.PENDING), max_attempts, now, now),
        )

    def rearm(self, *, message_ids: Sequence[int] = (), ack_ids: Sequence[int] = ()) -> int:
        """Send these ACKs again now, with a fresh count of tries (a resend of the message,
        or an operator's retry). Returns how many were re-armed."""
        out = 0
        with self.repo.transaction() as tx:
            for column, ids in (("message_id", message_ids), ("id", ack_ids)):
                if not ids:
                    continue
                marks = ", ".join("?" * len(ids))
                rows = tx.execute(
                    f"UPDATE ingest_app_acks SET status = ?, attempts = 0, next_attempt_at = ?, "
                    f"delivered_at = NULL WHERE {column} IN ({marks}) RETURNING id",
                    (str(AppAckStatus.PENDING), self.clock(), *ids),
                )
                out += len(rows)
        return out

    def due(self, limit: int = 50) -> list[AppAck]:
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM ingest_app_acks WHERE status = ? AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, id LIMIT ?",
            (str(AppAckStatus.PENDING), self.clock(), limit),
        )
        return [_ack(r) for r in rows]

    def mark_delivered(self, ack_id: int) -> None:
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE ingest_app_acks SET status = ?, attempts = attempts + 1, "
                "delivered_at = ?, next_attempt_at = NULL, last_error = NULL WHERE id = ?",
                (str(AppAckStatus.DELIVERED), self.clock(), ack_id),
            )

    def mark_failed(self, ack: AppAck, error: str) -> AppAckStatus:
        """A failed try: back off, or give up after ``max_attempts`` (``undelivered``)."""
        attempts = ack.attempts + 1
        give_up = attempts >= ack.max_attempts
        status = AppAckStatus.UNDELIVERED if give_up else AppAckStatus.PENDING
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE ingest_app_acks SET status = ?, attempts = ?, next_attempt_at = ?, "
                "last_error = ? WHERE id = ?",
                (str(status), attempts,
                 None if give_up else self.clock() + self.retry_delay(attempts),
                 error[:200], ack.id),
            )
        return status

    def get(self, ack_id: int) -> AppAck:
        rows = self.repo.query(f"SELECT {_COLUMNS} FROM ingest_app_acks WHERE id = ?",
                               (ack_id,))
        if not rows:
            raise FhirError(Category.NOT_FOUND, f"no application ACK {ack_id} / "
                                                f"没有编号为 {ack_id} 的应用确认")
        return _ack(rows[0])

    def for_message(self, message_id: int) -> AppAck | None:
        rows = self.repo.query(f"SELECT {_COLUMNS} FROM ingest_app_acks WHERE message_id = ?",
                               (message_id,))
        return _ack(rows[0]) if rows else None

    def search(self, *, status: AppAckStatus | None = None, channel: str | None = None,
               count: int = 50, offset: int = 0) -> tuple[list[AppAck], int]:
        """Newest first, with the total count."""
        conds, params = [], []
        if status is not None:
            conds.append("status = ?")
            params.append(str(status))
        if channel:
            conds.append("channel_id = ?")
            params.append(channel)
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        total = int(self.repo.query(f"SELECT COUNT(*) FROM ingest_app_acks{where}",
                                    params)[0][0])
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM ingest_app_acks{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, max(0, min(count, 1000)), max(0, offset)],
        )
        return [_ack(r) for r in rows], total


async def _send(ack: AppAck, timeout: float) -> None:
    client = await MllpClient.connect(ack.host, ack.port, timeout=timeout)
    try:
        # The ACK asks for no answer (MSH-15/16 NE), so none is awaited; the bytes reach
        # the peer before the FIN of the close that follows.
        async with asyncio.timeout(timeout):
            await client.send_only(ack.payload)
    finally:
        await client.close()


async def deliver_due(outbox: AppAckOutbox, *, limit: int = 50, timeout: float = 5.0,
                      run: Callable[..., Any] = asyncio.to_thread) -> tuple[int, int]:
    """Send the application ACKs that are due, one connection each, concurrently: a return
    address that swallows connections costs the round at most ``timeout`` seconds, not
    ``timeout`` per ACK (the retry worker's other work waits for the round). They may
    arrive in any order: each names its message in MSA-2. Returns
    (delivered, failed). ``run`` runs the blocking database calls off the event loop."""

    async def one(ack: AppAck) -> bool:
        try:
            await _send(ack, timeout)
        except (OSError, TimeoutError) as exc:
            status = await run(outbox.mark_failed, ack, type(exc).__name__)
            log.info("application ACK %s for message %s to %s:%s not delivered (%s): %s",
                     ack.id, ack.message_id, ack.host, ack.port, type(exc).__name__, status)
            return False
        await run(outbox.mark_delivered, ack.id)
        return True

    outcomes = await asyncio.gather(*(one(a) for a in await run(outbox.due, limit)))
    delivered = sum(outcomes)
    return delivered, len(outcomes) - delivered

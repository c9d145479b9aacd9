"""The integration engine as one object: channels, the message store, the HL7 v2 intake,
reprocessing and the retry worker's unit of work.

The HTTP API, the MLLP listener and the CLI all call this; none of them reaches into the
store or the intake directly, so each behaves the same whichever door a message came in by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import Category, FhirError
from huitong.ingest.app_acks import AppAckOutbox, deliver_due
from huitong.ingest.channels import Channel
from huitong.ingest.feed_intake import FEED_FORMATS, FeedIntake, FeedOutcome
from huitong.ingest.hl7v2 import Hl7v2Error, ParsedMessage, parse
from huitong.ingest.hl7v2.mapping import MergeRequest
from huitong.ingest.hl7v2_intake import (
    UNROUTED,
    Hl7v2Intake,
    IntakeResult,
    LockIn,
    Submit,
    SubmitIn,
)
from huitong.ingest.message_store import (
    ChannelState,
    MessageStatus,
    MessageStore,
    StoredMessage,
)
from huitong.store.repository import Repository

__all__ = ["IngestService", "IngestSettings"]

log = logging.getLogger("huitong.ingest")


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """``retention_days``: how long raw content of finished messages is kept, unless a
    channel sets its own."""

    retention_days: int = 90
    retry_batch: int = 100


@dataclass
class IngestService:
    repo: Repository
    submit: Submit
    clock: Clock
    new_id: IdFactory
    settings: IngestSettings = field(default_factory=IngestSettings)
    # The identity service's merge (ADT^A40 and friends); None leaves merges as warnings.
    on_merge: Callable[[MergeRequest, Channel], bool] | None = None
    # The transaction executor inside a transaction the caller commits: lets the batched
    # HL7 v2 intake write a group of messages in one database transaction.
    submit_in: SubmitIn | None = None
    # Takes a group's conditional locks together, before submit_in writes its messages.
    lock_in: LockIn | None = None

    def __post_init__(self) -> None:
        self.store = MessageStore(self.repo, self.clock)
        self.hl7v2 = Hl7v2Intake(self.store, self.submit, clock=self.clock, new_id=self.new_id,
                                 on_merge=self.on_merge, submit_in=self.submit_in,
                                 lock_in=self.lock_in)
        self.feeds = FeedIntake(self.repo, self.store, self.submit, clock=self.clock)

    # -- channels --------------------------------------------------------------------------
    def put_channel(self, channel: Channel) -> ChannelState:
        state = self.store.put_channel(channel)
        self.hl7v2.reload_channels()
        return state

    def set_enabled(self, channel_id: str, enabled: bool) -> ChannelState:
        state = self.store.set_enabled(channel_id, enabled)
        self.hl7v2.reload_channels()
        return state

    # -- messages --------------------------------------------------------------------------
    def receive_hl7v2(self, raw: bytes, *, channel_id: str | None = None) -> IntakeResult:
        """One HL7 v2 message from any door (MLLP, HTTP, a file). ``channel_id`` pins the
        channel (an HTTP endpoint per channel); otherwise MSH-3/MSH-4 route it."""
        channel = self.store.channel(channel_id).channel if channel_id else None
        return self.hl7v2.handle(raw, channel=channel)

    def receive_hl7v2_batch(self, raws: list[bytes]) -> list[IntakeResult]:
        """HL7 v2 messages that arrived together (the MLLP batcher): the same answers as
        :meth:`receive_hl7v2` for each, in order, in two commits for the group."""
        return self.hl7v2.handle_batch(raws)

    def receive_file(self, channel_id: str, raw: bytes, *, name: str | None = None
                     ) -> FeedOutcome:
        """A CSV/JSON/NDJSON file for a csv or json channel (upload endpoint, CLI)."""
        state = self.store.channel(channel_id)
        return self.feeds.receive_file(state.channel, raw, name=name, enabled=state.enabled)

    def receive_device(self, channel_id: str, payload: bytes) -> FeedOutcome:
        """One gateway JSON payload or PHD Bundle for a device channel (REST, MQTT)."""
        state = self.store.channel(channel_id)
        return self.feeds.receive_device(state.channel, payload, enabled=state.enabled)

    def receive_devices(self, channel_id: str, payloads: list[bytes]) -> list[FeedOutcome]:
        """Device payloads that arrived together (an MQTT batch): one outcome each, in
        order, stored in one commit and written in one transaction."""
        state = self.store.channel(channel_id)
        return self.feeds.receive_devices(state.channel, payloads, enabled=state.enabled)

    def receive_dicom(self, channel_id: str, files: list[tuple[str, bytes]]) -> FeedOutcome:
        """DICOM files ``(name, bytes)`` for a dicom channel (upload endpoint, CLI)."""
        state = self.store.channel(channel_id)
        return self.feeds.receive_dicom(state.channel, files, enabled=state.enabled)

    def reprocess(self, message_id: int) -> StoredMessage:
        """Run a stored message through mapping and writing again (after a mapping fix, or
        a transient failure). Idempotent mapping makes this safe to repeat. Feed messages
        (csv, json, device, dicom channels) go back through the feed intake."""
        message = self.store.get(message_id)
        if message.channel_id != UNROUTED:
            feed = self.store.channel(message.channel_id).channel
            if feed.format in FEED_FORMATS:
                self.feeds.process(message, feed)
                return self.store.get(message_id)
        if message.raw is None:
            raise FhirError(
                Category.GONE,
                f"message {message_id}'s raw content was purged (retention) / "
                f"消息 {message_id} 的原始内容已按保留期限清除",
            )
        try:
            parsed = parse(message.raw)
        except Hl7v2Error as err:
            self.store.record_failure(
                message.id, errors=[{"code": err.condition.value, "en": err.issues[0].en,
                                     "zh": err.issues[0].zh}],
                transient=False, ack_code="AR",
            )
            return self.store.get(message_id)
        channel = None
        if message.channel_id != UNROUTED:
            channel = self.store.channel(message.channel_id).channel
        else:
            channel = self.hl7v2.route(parsed.header)
            if channel is None:
                return message  # still nobody's: leave it in the error queue
            self._move(message, channel)
        self.hl7v2.process(message, parsed, channel)
        return self.store.get(message_id)

    def _move(self, message: StoredMessage, channel: Channel) -> None:
        with self.repo.transaction() as tx:
            tx.execute("UPDATE ingest_messages SET channel_id = ? WHERE id = ?",
                       (channel.id, message.id))
        message.channel_id = channel.id

    def run_due(self) -> int:
        """Retry the queued messages whose time has come (and process the deferred
        enhanced-mode ones). Returns how many were tried. Routed HL7 v2 messages are written
        as one group (``Hl7v2Intake.process_group``: one transaction, each alone only if it
        fails); everything else goes through :meth:`reprocess` one at a time."""
        tried = 0
        group: list[tuple[StoredMessage, ParsedMessage, Channel]] = []
        try:
            for message_id in self.store.due(self.settings.retry_batch):
                tried += 1
                grouped = self._groupable(message_id)
                if grouped is not None:
                    group.append(grouped)
                    continue
                try:
                    self.reprocess(message_id)
                except FhirError as err:
                    if err.category is Category.UNAVAILABLE:
                        raise
                    log.warning("retry of message %s failed: %s", message_id,
                                err.category.value)
            if group:
                self.hl7v2.process_group(group)
        except FhirError as err:
            if err.category is not Category.UNAVAILABLE:
                raise
            # The database is still away: try again next round.
        return tried

    def _groupable(self, message_id: int
                   ) -> tuple[StoredMessage, ParsedMessage, Channel] | None:
        """A stored HL7 v2 message of a known hl7v2 channel, parsed: ready for the group."""
        try:
            message = self.store.get(message_id)
            if message.channel_id == UNROUTED or message.raw is None:
                return None
            channel = self.store.channel(message.channel_id).channel
        except FhirError as err:
            if err.category is Category.UNAVAILABLE:
                raise
            return None  # reprocess says what is wrong
        if channel.format != "hl7v2":
            return None
        try:
            return message, parse(message.raw), channel
        except Hl7v2Error:
            return None  # reprocess records why

    # -- enhanced-mode application ACKs ---------------------------------------------------
    @property
    def app_acks(self) -> AppAckOutbox:
        return self.hl7v2.app_acks

    async def deliver_app_acks(self, *, run: Callable[..., Any] = asyncio.to_thread
                               ) -> int:
        """Send the application ACKs that are due to their senders' return addresses (the
        retry worker calls this every round). Returns how many were tried."""
        delivered, failed = await deliver_due(self.app_acks, run=run)
        return delivered + failed

    def purge(self) -> int:
        """Apply raw-content retention (per channel, else the default)."""
        per_channel = {
            s.channel.id: s.channel.retention_days
            for s in self.store.channels()
            if s.channel.retention_days is not None
        }
        return self.store.purge_raw(per_channel, self.settings.retention_days)

    def statuses(self) -> list[str]:
        return [str(s) for s in MessageStatus]

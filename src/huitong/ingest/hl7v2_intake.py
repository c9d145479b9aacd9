"""HL7 v2 intake: one inbound message from receipt to acknowledgement.

    bytes ─> parse ─> route to a channel ─> store raw (committed) ─> map to FHIR
          ─> write through the one pipeline, marking the message processed in the same
             database transaction ─> ACK

The ACK is only sent after the step it vouches for: a stored message that could not be
written answers AE (the sender resends, and the resend finds the stored message instead of
creating a second one); a message that can never succeed (unsupported type, content error)
is stored with its errors in the error queue and answered AR/AE with an ERR segment saying
why. A resend of a message already processed gets AA again without processing it twice.

Enhanced acknowledgement mode (MSH-15/16) on a channel with a return address (``ack_host``
/ ``ack_port``): the message is stored ``queued`` and answered with the accept ACK (CA) at
once; the retry worker processes it, and the application ACK MSH-16 asks for is owed in the
same transaction as the final status and delivered over a new connection
(:mod:`huitong.ingest.app_acks`). Without a return address both ACKs go back on the inbound
connection after processing, as in original mode.

The FHIR write is injected (``submit``): the composition root passes the FHIR server's
transaction-bundle executor, so HL7 v2 and REST writes are validated, indexed and stored by
the same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import CATEGORY_INFO, Category, FhirError
from huitong.ingest.app_acks import AppAckOutbox
from huitong.ingest.channels import Channel
from huitong.ingest.hl7v2 import (
    Condition,
    ErrorLocation,
    Hl7v2Error,
    Hl7v2Issue,
    MessageHeader,
    Outcome,
    ParsedMessage,
    Severity,
    ack_plan,
    build_ack,
    build_acks,
    issue_from_fhir_error,
    parse,
)
from huitong.ingest.hl7v2.mapping import (
    MappingContext,
    MappingError,
    MappingResult,
    MergeRequest,
    UnsupportedMessage,
    map_message,
)
from huitong.ingest.message_store import Inbound, MessageStatus, MessageStore, StoredMessage
from huitong.ingest.redact import redact_text, safe_exception
from huitong.store.repository import Transaction

__all__ = ["UNROUTED", "Hl7v2Intake", "IntakeResult", "Submit", "SubmitIn"]

log = logging.getLogger("huitong.ingest")

# submit(bundle, before_commit) -> transaction-response Bundle; raises FhirError.
Submit = Callable[[dict[str, Any], Callable[[Transaction, dict[str, Any]], None]], dict[str, Any]]
# submit_in(tx, bundle, before_commit): the same, inside a transaction the caller opened and
# commits (the batched intake writes a group of messages in one database transaction).
SubmitIn = Callable[
    [Transaction, dict[str, Any], Callable[[Transaction, dict[str, Any]], None]],
    dict[str, Any],
]
# lock_in(tx, bundles): take, in one order, every lock the bundles' conditional entries will
# take (server/bundle.py, conditional_locks), before a group writes them one by one in tx.
LockIn = Callable[[Transaction, Sequence[dict[str, Any]]], None]
# Messages no channel claims are still stored (so an operator can see them), under this id.
UNROUTED = "unrouted"
_TRANSIENT = (Category.UNAVAILABLE, Category.INTERNAL, Category.TOO_MANY_REQUESTS,
              Category.PRECONDITION_FAILED)
_CONDITION_BY_CODE = {c.value: c for c in Condition}
_MERGE_NOT_APPLIED = Hl7v2Issue(
    Condition.UNKNOWN_KEY_IDENTIFIER,
    "Merge not applied: a patient in it is not known to the identity service yet",
    "未执行合并：其中的患者尚未被身份服务识别",
    ErrorLocation("MRG", 1, 1), severity=Severity.WARNING,
)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What became of a message: its ACK payloads (encoded, in order) and its store row."""

    acks: list[bytes]
    message: StoredMessage | None
    ack_code: str


@dataclass(slots=True)
class _Planned:
    """A stored message mapped and ready to write (see ``Hl7v2Intake._plan``)."""

    message: StoredMessage
    parsed: ParsedMessage
    channel: Channel
    result: MappingResult
    outcome: Outcome
    patients: list[str]
    before_commit: Callable[[Transaction, dict[str, Any]], None]
    started_ns: int
    bundle: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.bundle = self.result.bundle


def _issue_dict(issue: Hl7v2Issue) -> dict[str, Any]:
    return {"code": issue.condition.value, "location": str(issue.location),
            "severity": issue.severity.value, "en": issue.en, "zh": issue.zh,
            "category": issue.effective_category.value}


def _location(text: str) -> ErrorLocation:
    """``OBX[3].6`` (the mapping's notation) as an ERR location."""
    segment, _, rest = text.partition("[")
    sequence, _, field_part = rest.partition("].")
    try:
        return ErrorLocation(segment_id=segment[:3], sequence=int(sequence or 1),
                             field=int(field_part.split(".")[0]) if field_part else 0)
    except (TypeError, ValueError):
        return ErrorLocation(segment_id=segment[:3])


def _sender(header: MessageHeader) -> str:
    return f"{header.sending_application}^{header.sending_facility}"


class Hl7v2Intake:
    """Takes raw HL7 v2 messages in (from MLLP, HTTP or a file drop) and answers ACKs."""

    def __init__(
        self,
        store: MessageStore,
        submit: Submit,
        *,
        clock: Clock,
        new_id: IdFactory,
        on_merge: Callable[[MergeRequest, Channel], bool] | None = None,
        submit_in: SubmitIn | None = None,
        lock_in: LockIn | None = None,
    ) -> None:
        self.store = store
        self.submit = submit
        # Without it, handle_batch still stores the group in one commit but writes each
        # message in its own transaction.
        self.submit_in = submit_in
        self.lock_in = lock_in
        self.on_merge = on_merge
        self.clock = clock
        self.new_id = new_id
        self.app_acks = AppAckOutbox(store.repo, clock)
        self._channels: list[Channel] = []
        self._enabled: dict[str, bool] = {}
        self._loaded_at = 0.0
        # True while something else (the server's retry worker) keeps the channels fresh.
        self.background_refresh = False

    # -- routing -------------------------------------------------------------------------
    def _refresh_channels(self) -> None:
        # Channels change rarely (CLI or API). A server refreshes them in the background
        # (``reload_channels`` from the retry worker), so the message path reads the
        # database for them only once, or when no background refresh is running.
        if self._loaded_at and (self.background_refresh
                                or time.monotonic() - self._loaded_at < 2.0):
            return
        self.reload_channels()

    def reload_channels(self) -> None:
        """Read the channels now; FhirError (UNAVAILABLE) when the database is away, in
        which case the last known channels stay in force."""
        states = self.store.channels()
        self._channels = [s.channel for s in states if s.channel.format == "hl7v2"]
        self._enabled = {s.channel.id: s.enabled for s in states}
        self._loaded_at = time.monotonic()

    def route(self, header: MessageHeader) -> Channel | None:
        self._refresh_channels()
        app = header.sending_application.namespace_id or header.sending_application.raw
        facility = header.sending_facility.namespace_id or header.sending_facility.raw
        for channel in self._channels:
            if channel.accepts_sender(app, facility):
                return channel
        return None

    # -- the pipeline ----------------------------------------------------------------------
    def handle(self, raw: bytes, *, channel: Channel | None = None) -> IntakeResult:
        """Process one message. Never raises for bad input: the answer is an ACK."""
        started = time.perf_counter_ns()
        try:
            parsed = parse(raw)
        except Hl7v2Error as err:
            return self._rejected_unparsed(raw, err, channel)
        header = parsed.header
        try:
            if channel is None:
                channel = self.route(header)
            self._refresh_channels()
        except FhirError as err:  # the database is down before we know the channels
            log.warning("channels unavailable: %s", err.category.value)
            return self._answer(parsed, Outcome.failed((issue_from_fhir_error(err),),
                                                        stored=False), None)
        if channel is None:
            issue = Hl7v2Issue(
                Condition.UNKNOWN_KEY_IDENTIFIER,
                f"No channel accepts messages from {_sender(header)}",
                f"没有通道接收来自 {_sender(header)} 的消息",
                ErrorLocation("MSH", 1, 4), category=Category.NOT_SUPPORTED,
            )
            return self._fail_before_processing(raw, parsed, UNROUTED, issue)
        if not self._enabled.get(channel.id, channel.enabled):
            issue = Hl7v2Issue(
                Condition.APPLICATION_INTERNAL_ERROR,
                f"Channel {channel.id} is stopped; resend later",
                f"通道 {channel.id} 已停止，请稍后重发",
                category=Category.UNAVAILABLE,
            )
            return self._answer(parsed, Outcome.failed((issue,), stored=False), None)
        deferred = _deferred(header, channel)
        try:
            message, new = self.store.receive(
                channel.id, sender=_sender(header), control_id=header.control_id or None,
                message_type=header.message_type, raw=raw, encoding=parsed.codec,
                deferred=deferred,
            )
            if deferred:
                return self._accepted(parsed, message, new)
        except FhirError as err:  # the database is down: nothing stored, the sender retries
            log.warning("message store unavailable: %s", err.category.value)
            return self._answer(parsed, Outcome.failed((issue_from_fhir_error(err),),
                                                        stored=False), None)
        if not new and message.status in (MessageStatus.PROCESSED, MessageStatus.FILTERED):
            # A resend of what we already took: same answer, no second processing.
            return self._answer(parsed, Outcome.processed(parsed.warnings), message)
        return self.process(message, parsed, channel, started_ns=started)

    def process(
        self,
        message: StoredMessage,
        parsed: ParsedMessage,
        channel: Channel,
        *,
        started_ns: int | None = None,
    ) -> IntakeResult:
        """Map and write a stored message; record the outcome; build the ACKs."""
        planned = self._plan(message, parsed, channel, started_ns=started_ns)
        if isinstance(planned, IntakeResult):
            return planned
        try:
            self.submit(planned.bundle, planned.before_commit)
        except FhirError as err:
            return self._write_failed(planned, err)
        return self._finish(planned)

    def _plan(
        self,
        message: StoredMessage,
        parsed: ParsedMessage,
        channel: Channel,
        *,
        started_ns: int | None = None,
    ) -> _Planned | IntakeResult:
        """Map a stored message (pure, before any write): its transaction Bundle and the
        bookkeeping that commits with it, or the answer already (mapping failed)."""
        started = started_ns or time.perf_counter_ns()
        ctx = MappingContext(
            organization=channel.organization,
            identifier_namespace=channel.identifier_namespace,
            now=_utc(self.clock()),
        )
        try:
            result = map_message(parsed.decoded.text, ctx)
        except UnsupportedMessage as exc:
            condition = (Condition.UNSUPPORTED_EVENT_CODE if exc.code == 201
                         else Condition.UNSUPPORTED_MESSAGE_TYPE)
            issue = Hl7v2Issue(condition, redact_text(exc.en), redact_text(exc.zh),
                               ErrorLocation("MSH", 1, 9), category=Category.NOT_SUPPORTED)
            return self._failed(message, parsed, channel, issue, transient=False)
        except MappingError as exc:
            condition = _CONDITION_BY_CODE.get(str(exc.code), Condition.DATA_TYPE)
            issue = Hl7v2Issue(condition, redact_text(exc.en), redact_text(exc.zh),
                               _location(exc.location), category=Category.INVALID)
            return self._failed(message, parsed, channel, issue, transient=False)
        warnings = [
            Hl7v2Issue(Condition.DATA_TYPE, redact_text(w.en), redact_text(w.zh),
                       _location(w.location), severity=Severity.WARNING)
            for w in result.warnings
        ]
        outcome = Outcome.processed((*parsed.warnings, *warnings))
        patients = _identifiers(result)
        # Never attempted: no patient rows of an earlier attempt to replace.
        fresh = message.attempts == 0 and message.status is MessageStatus.RECEIVED

        def before_commit(tx: Transaction, response: dict[str, Any]) -> None:
            produced = _produced(response)
            self.store.record_processed(
                tx, message.id, produced=produced,
                warnings=[_issue_dict(w) for w in outcome.issues]
                + ([{"merge": _merge_dict(result)}] if result.merge else []),
                patients=[*patients, *(p.split("/_history")[0] for p in produced
                                       if p.startswith("Patient/"))],
                ack_code="AA", latency_us=(time.perf_counter_ns() - started) // 1000,
                fresh=fresh,
            )
            self._owe_app_ack(tx, message, parsed, channel, outcome)

        return _Planned(message, parsed, channel, result, outcome, patients, before_commit,
                        started)

    def _write_failed(self, planned: _Planned, err: FhirError) -> IntakeResult:
        issue = issue_from_fhir_error(err)
        return self._failed(planned.message, planned.parsed, planned.channel, issue,
                            transient=err.category in _TRANSIENT, patients=planned.patients)

    def _finish(self, planned: _Planned) -> IntakeResult:
        """After the write committed: the merge (if any) and the ACKs."""
        result, outcome, message = planned.result, planned.outcome, planned.message
        if result.merge is not None and self.on_merge is not None:
            # The identity service merges golden records; the patients' own source records
            # stay as the institution sent them. An unknown side is kept as a warning.
            try:
                merged = self.on_merge(result.merge, planned.channel)
            except FhirError as err:
                merged = False
                log.warning("merge for message %s not applied: %s", message.id,
                            err.category.value)
            if not merged:
                outcome = Outcome.processed((*outcome.issues, _MERGE_NOT_APPLIED))
        elif result.merge is not None:
            outcome = Outcome.processed((*outcome.issues, _MERGE_NOT_APPLIED))
        if outcome is not planned.outcome and _deferred(planned.parsed.header, planned.channel):
            # The application ACK owed at commit did not know the merge's fate yet.
            try:
                with self.store.repo.transaction() as tx:
                    self._owe_app_ack(tx, message, planned.parsed, planned.channel, outcome)
            except FhirError as err:
                log.warning("application ACK of message %s not updated: %s", message.id,
                            err.category.value)
        return self._answer(planned.parsed, outcome, message)

    # -- the batched pipeline ------------------------------------------------------------
    def handle_batch(self, raws: Sequence[bytes]) -> list[IntakeResult]:
        """Process messages that arrived together (from any connections), with the same
        answers as :meth:`handle` one by one, but in two commits for the whole group: the
        raw messages in one, then all their resources and statuses in one transaction.

        Isolation: when one message's write fails, the group transaction is rolled back
        (nothing of it was kept) and every message is written again on its own, so the bad
        one gets its own AE/AR and the others their AA. Messages the fast path does not
        cover (unparsable, unrouted, stopped channel, a resend repeated inside the group)
        take :meth:`handle`, after the group, in arrival order."""
        results: list[IntakeResult | None] = [None] * len(raws)
        pending: list[tuple[int, ParsedMessage, Channel, int]] = []
        later: list[int] = []
        keys: set[tuple[str, str, str]] = set()
        for i, raw in enumerate(raws):
            started = time.perf_counter_ns()
            try:
                parsed = parse(raw)
                channel = self.route(parsed.header)
            except (Hl7v2Error, FhirError):
                later.append(i)
                continue
            if channel is None or not self._enabled.get(channel.id, channel.enabled):
                later.append(i)
                continue
            key = (channel.id, _sender(parsed.header), parsed.header.control_id)
            if parsed.header.control_id and key in keys:
                later.append(i)  # after the first one committed: answered as its resend
                continue
            keys.add(key)
            pending.append((i, parsed, channel, started))
        if pending:
            self._batch(raws, pending, results)
        for i in later:
            results[i] = self.handle(raws[i])
        return [r for r in results if r is not None]

    def _batch(
        self,
        raws: Sequence[bytes],
        pending: list[tuple[int, ParsedMessage, Channel, int]],
        results: list[IntakeResult | None],
    ) -> None:
        try:
            stored = self.store.receive_many([
                Inbound(channel.id, _sender(parsed.header), parsed.header.control_id or None,
                        parsed.header.message_type, raws[i], parsed.codec,
                        deferred=_deferred(parsed.header, channel))
                for i, parsed, channel, _ in pending
            ])
            accepted = {
                i: self._accepted(parsed, message, new)
                for (i, parsed, channel, _), (message, new) in zip(pending, stored, strict=True)
                if _deferred(parsed.header, channel)
            }
        except FhirError as err:  # the database is down: nothing stored, senders retry
            log.warning("message store unavailable: %s", err.category.value)
            for i, parsed, _, _ in pending:
                results[i] = self._answer(parsed, Outcome.failed(
                    (issue_from_fhir_error(err),), stored=False), None)
            return
        plans: list[tuple[int, _Planned]] = []
        for (i, parsed, channel, started), (message, new) in zip(pending, stored, strict=True):
            if i in accepted:
                results[i] = accepted[i]
                continue
            if not new and message.status in (MessageStatus.PROCESSED, MessageStatus.FILTERED):
                results[i] = self._answer(parsed, Outcome.processed(parsed.warnings), message)
                continue
            planned = self._plan(message, parsed, channel, started_ns=started)
            if isinstance(planned, IntakeResult):
                results[i] = planned
            else:
                plans.append((i, planned))
        for i, result in self._write_group([p for _, p in plans]):
            results[plans[i][0]] = result

    def process_group(
        self, items: Sequence[tuple[StoredMessage, ParsedMessage, Channel]]
    ) -> list[IntakeResult]:
        """:meth:`process` for several stored messages (the retry worker's due ones, among
        them deferred enhanced-mode messages): mapped one by one, written in one
        transaction, each alone only when the group's write fails."""
        results: list[IntakeResult] = []
        plans: list[_Planned] = []
        for message, parsed, channel in items:
            planned = self._plan(message, parsed, channel)
            if isinstance(planned, IntakeResult):
                results.append(planned)
            else:
                plans.append(planned)
        results += [result for _, result in self._write_group(plans)]
        return results

    def _write_group(self, plans: list[_Planned]) -> list[tuple[int, IntakeResult]]:
        """Write mapped messages in one transaction; on failure, each on its own."""
        if self.submit_in is not None and len(plans) > 1:
            submit_in = self.submit_in
            # The executor rewrites references in place, and a rolled-back group must leave
            # the bundles as mapped for the retry: they are kept serialised and decoded
            # again only when the group fails (decoding each one cost every message).
            mapped = [orjson.dumps(planned.bundle) for planned in plans]
            try:
                with self.store.repo.transaction() as tx:
                    if self.lock_in is not None:
                        # All the group's locks first, in one order: message by message,
                        # two groups in two server processes could deadlock.
                        self.lock_in(tx, [planned.bundle or {} for planned in plans])
                    for planned in plans:
                        submit_in(tx, planned.bundle or {}, planned.before_commit)
            except FhirError as err:
                for planned, text in zip(plans, mapped, strict=True):
                    planned.bundle = orjson.loads(text)
                if err.category is Category.UNAVAILABLE:
                    # The database is away: one by one would only fail again, slower.
                    return [(n, self._write_failed(p, err)) for n, p in enumerate(plans)]
                log.info("batched write of %d messages failed (%s); writing each alone",
                         len(plans), err.category.value)
            except Exception as exc:  # a bug in one message must not cost the others theirs
                for planned, text in zip(plans, mapped, strict=True):
                    planned.bundle = orjson.loads(text)
                # Type and frames only: an exception's message may quote patient data.
                log.error("batched write of %d messages failed (%s); writing each alone",
                          len(plans), safe_exception(exc))
            else:
                return [(n, self._finish(p)) for n, p in enumerate(plans)]
        out: list[tuple[int, IntakeResult]] = []
        for n, planned in enumerate(plans):
            try:
                self.submit(planned.bundle or {}, planned.before_commit)
            except FhirError as err:
                out.append((n, self._write_failed(planned, err)))
            else:
                out.append((n, self._finish(planned)))
        return out

    # -- outcomes ----------------------------------------------------------------------
    def _failed(
        self,
        message: StoredMessage,
        parsed: ParsedMessage,
        channel: Channel,
        issue: Hl7v2Issue,
        *,
        transient: bool,
        patients: list[str] | None = None,
    ) -> IntakeResult:
        outcome = Outcome.failed((*parsed.warnings, issue), stored=True)
        code = outcome.application_code.value
        try:
            stored = self.store.record_failure(
                message.id, errors=[_issue_dict(issue)], transient=transient, ack_code=code,
                max_attempts=channel.max_attempts, patients=patients or (),
                on_final=lambda tx: self._owe_app_ack(tx, message, parsed, channel,
                                                      Outcome.failed((issue,), stored=True)),
            )
        except FhirError:
            stored = message  # still "received": the retry worker picks it up
            if not transient:
                outcome = Outcome.failed((issue_from_fhir_error(
                    FhirError(Category.UNAVAILABLE, "database unavailable")),), stored=True)
        if transient:
            # Stored but not processed: AE so the sender keeps it until we succeed.
            outcome = Outcome.failed((issue,), stored=True)
        return self._answer(parsed, outcome, stored)

    def _fail_before_processing(
        self, raw: bytes, parsed: ParsedMessage, channel_id: str, issue: Hl7v2Issue
    ) -> IntakeResult:
        stored = self._store_rejected(raw, parsed.header, channel_id, issue, parsed.codec)
        return self._answer(parsed, Outcome.failed((issue,), stored=stored is not None), stored)

    def _rejected_unparsed(
        self, raw: bytes, err: Hl7v2Error, channel: Channel | None
    ) -> IntakeResult:
        channel_id = channel.id if channel else UNROUTED
        if channel is None and err.header.sending_facility.raw:
            try:
                routed = self.route(err.header)
            except FhirError:
                routed = None  # the database is away; storing will fail and say so
            channel_id = routed.id if routed else UNROUTED
        stored = self._store_rejected(raw, err.header, channel_id, err.issues[0], err.codec)
        outcome = Outcome.failed(err.issues, stored=stored is not None)
        acks = build_acks(err.header, outcome, clock=self.clock, new_id=self.new_id,
                          codec=err.codec)
        code = outcome.application_code.value
        return IntakeResult([a.encode() for a in acks], stored, code)

    def _store_rejected(
        self, raw: bytes, header: MessageHeader, channel_id: str, issue: Hl7v2Issue,
        codec: str,
    ) -> StoredMessage | None:
        """Keep a message we cannot take, with why, in the error queue (never silently
        dropped). Returns None when even that failed (the database is down)."""
        try:
            message, new = self.store.receive(
                channel_id, sender=_sender(header), control_id=header.control_id or None,
                message_type=header.message_type or None, raw=raw, encoding=codec,
            )
            if new or message.status is not MessageStatus.PROCESSED:
                code = CATEGORY_INFO[issue.effective_category].hl7v2_ack
                message = self.store.record_failure(
                    message.id, errors=[_issue_dict(issue)], transient=False, ack_code=code
                )
            return message
        except FhirError:
            return None

    # -- enhanced mode with a return address ----------------------------------------------
    def _accepted(self, parsed: ParsedMessage, message: StoredMessage, new: bool
                  ) -> IntakeResult:
        """A deferred message is in safe storage: the accept ACK (if MSH-15 wants it) now;
        processing and the application ACK come later. A resend of one already finished
        re-arms its application ACK (the sender evidently did not get it), a resend of one
        that failed for good is queued again, as a resend is processed again in original
        mode."""
        if not new and message.status in (MessageStatus.PROCESSED, MessageStatus.FILTERED):
            self.app_acks.rearm(message_ids=[message.id])
        elif not new and message.status is MessageStatus.ERROR:
            self.store.requeue([message.id])
        accept = ack_plan(parsed.header, Outcome.processed(parsed.warnings)).accept
        if accept is None:
            return IntakeResult([], message, "CA")
        ack = build_ack(parsed.header, accept, parsed.warnings, clock=self.clock,
                        new_id=self.new_id, codec=parsed.codec)
        return IntakeResult([ack.encode()], message, accept.value)

    def _owe_app_ack(self, tx: Transaction, message: StoredMessage, parsed: ParsedMessage,
                     channel: Channel, outcome: Outcome) -> None:
        """Inside the transaction that gives ``message`` its final status: record the
        application ACK MSH-16 asks for, for delivery to the channel's return address."""
        address = channel.return_address
        if address is None or not parsed.header.enhanced_mode:
            return
        code = ack_plan(parsed.header, outcome).application
        if code is None:  # MSH-16 NE, or ER on success / SU on failure
            return
        issues = (tuple(i for i in outcome.issues if i.severity is not Severity.ERROR)
                  if code.is_success else outcome.issues)
        ack = build_ack(parsed.header, code, issues, clock=self.clock, new_id=self.new_id,
                        codec=parsed.codec)
        self.app_acks.enqueue(tx, message_id=message.id, channel_id=channel.id,
                              address=address, ack_code=code.value, payload=ack.encode(),
                              max_attempts=channel.max_attempts)

    def _answer(
        self, parsed: ParsedMessage, outcome: Outcome, message: StoredMessage | None
    ) -> IntakeResult:
        acks = build_acks(parsed.header, outcome, clock=self.clock, new_id=self.new_id,
                          codec=parsed.codec)
        return IntakeResult([a.encode() for a in acks], message,
                            outcome.application_code.value)


def _deferred(header: MessageHeader, channel: Channel) -> bool:
    """Enhanced mode to a channel with a return address: accept now, process later."""
    return header.enhanced_mode and channel.return_address is not None


def _utc(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def _identifiers(result: MappingResult | None) -> list[str]:
    if result is None:
        return []
    return [f"{system}|{value}" for system, value in result.patient_identifiers]


def _merge_dict(result: MappingResult) -> dict[str, Any]:
    merge = result.merge
    assert merge is not None
    return {"surviving": list(merge.surviving), "merged": [list(m) for m in merge.merged],
            "reason": merge.reason}


def _produced(response: dict[str, Any]) -> list[str]:
    """``Type/id/_history/v`` of every entry the transaction wrote."""
    out = []
    for entry in response.get("entry", []):
        location = entry.get("response", {}).get("location")
        if isinstance(location, str):
            tail = location.split("/fhir/")[-1] if "/fhir/" in location else location
            out.append(tail)
    return out


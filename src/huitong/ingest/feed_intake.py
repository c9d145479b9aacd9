"""Feed intake: CSV/JSON files, device readings and DICOM files from receipt to outcome.

    content ─> store raw (committed) ─> convert with the channel's mapping
            ─> write through the one pipeline (``submit``) ─> status + report ─> answer

The same path serves every door (upload endpoint, CLI, MQTT, reprocessing), as the HL7 v2
intake does for v2 messages. What is stored, and under which control id, per format:

* ``csv`` / ``json``: the whole file is one message; its control id is the SHA-256 of the
  content, so importing the same file again finds the first message and writes nothing.
  Records are written ``mapping.batch_size`` at a time; a batch the server refuses (a 412
  for an unknown patient in a conditional reference, a resource it finds invalid) is split
  in halves until the refused records are isolated and reported, so the good ones land.
  The report (row, column, reason, en/zh) is stored with the message and returned.
* ``device``: one gateway JSON payload or PHD Bundle is one message; its control id is the
  set of reading identifiers it carries (device serial, UTC time, LOINC code), else the
  payload's SHA-256. The status is recorded in the transaction that writes the readings.
* ``dicom``: each file is one message keyed by its SOP Instance UID, stored WITHOUT pixel
  data (the pixels stay in the PACS); the files of one upload are merged with the studies
  already stored and written as ImagingStudy updates in one transaction.

Statuses: ``processed`` (possibly with a report of refused records, kept as warnings),
``error`` (nothing usable, or a mapping that cannot be read), ``queued`` (a transient
failure: the retry worker runs :meth:`FeedIntake.process` again). While a large file is
being written its message is ``queued`` with a retry time a few minutes ahead (a lease,
renewed every batch), so the retry worker does not take it twice; if the process dies, the
lease runs out and the file is retried (every write is an idempotent conditional one).
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from huitong.fhir.errors import CATEGORY_INFO, Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.ingest.channels import Channel
from huitong.ingest.devices import READING_SYSTEM, DeviceContext, convert_device_payload
from huitong.ingest.dicom import (
    DicomContext,
    InstanceMeta,
    build_imaging_studies,
    read_instance,
    study_identifier,
)
from huitong.ingest.feeds import (
    Conversion,
    FeedMapping,
    MappingError,
    MappingIssue,
    Problem,
    Unchecked,
    convert_csv,
    convert_json,
    parse_mapping,
    parse_mapping_toml,
)
from huitong.ingest.feeds.transforms import parse_offset
from huitong.ingest.hl7v2_intake import Submit
from huitong.ingest.message_store import (
    Inbound,
    MessageStatus,
    MessageStore,
    ProcessedMark,
    StoredMessage,
)
from huitong.ingest.redact import safe_error_text, safe_exception
from huitong.store.repository import Repository, Transaction

__all__ = [
    "FEED_FORMATS",
    "REFUSED",
    "FeedIntake",
    "FeedOutcome",
    "channel_mapping",
    "strip_pixel_data",
]

log = logging.getLogger("huitong.ingest")

FEED_FORMATS = ("csv", "json", "device", "dicom")
REFUSED = "refused"
"""Report reason of a record the FHIR server refused (its ``category`` says why)."""

_TRANSIENT = frozenset({Category.UNAVAILABLE, Category.INTERNAL, Category.TOO_MANY_REQUESTS})
_LEASE_US = 5 * 60 * 1_000_000
_MAX_PRODUCED = 10_000  # references kept on one message; a 100,000-row file makes 200,000
_MAX_REPORT = 5_000  # problems kept on one message (the count of the rest is reported)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _noop(_tx: Transaction, _response: dict[str, Any]) -> None:
    return None


class _Transient(Exception):
    def __init__(self, err: FhirError) -> None:
        super().__init__(err.category.value)
        self.err = err


@dataclass(slots=True)
class FeedOutcome:
    """What became of one submission. ``result``: ``created`` (new, written), ``duplicate``
    (already processed: nothing written again), ``error`` (stored in the error queue),
    ``queued`` (stored; a transient failure, retried later). ``report`` holds the problems
    (Problem dicts, plus ``reason: refused`` entries for records the server refused)."""

    result: str
    messages: list[StoredMessage] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    accepted: int = 0
    produced: int = 0

    @property
    def http_status(self) -> int:
        """201 created, 200 duplicate, 422 error, 503 queued (resend or wait)."""
        return {"created": 201, "duplicate": 200, "error": 422}.get(self.result, 503)

    def as_json(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "messages": [m.summary() for m in self.messages],
            "records": self.records, "accepted": self.accepted, "produced": self.produced,
            "report": self.report,
        }


@dataclass(slots=True)
class _Rec:
    """One input record's share of a Bundle (``entries``), with where it came from.
    ``unchecked``: the record as converted, without FHIR validation (the write validates
    every resource anyway), to map it again; ``checked`` once its validation was asked for;
    ``report`` is where its problems sit in the outcome's report, where the validation's
    problems go if its write is refused and it turns out invalid."""

    row: int | None
    line: int | None
    entries: list[dict[str, Any]]
    unchecked: Unchecked | None = None
    checked: bool = False
    report: slice = field(default_factory=lambda: slice(0))


def _problem_dicts(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    return [p.as_dict() for p in problems]


def _refused(err: FhirError, rec: _Rec) -> dict[str, Any]:
    # Row reports leave the store (API answers, operator pages): element and rule only,
    # never the refused value (an unknown patient's ID number, a bad birth date).
    en, _, zh = safe_error_text(err).partition(" / ")
    out: dict[str, Any] = {"reason": REFUSED, "severity": "error",
                           "category": err.category.value, "status": err.status}
    if rec.row is not None:
        out["row"] = rec.row
    if rec.line is not None:
        out["line"] = rec.line
    out["en"] = f"the server refused this record: {en}"
    out["zh"] = f"服务器拒绝了该记录：{zh or en}"
    return out


def _error_dict(err: FhirError) -> dict[str, Any]:
    en, _, zh = safe_error_text(err).partition(" / ")
    return {"reason": REFUSED, "severity": "error", "category": err.category.value,
            "status": err.status, "en": en, "zh": zh or en}


def _produced(response: dict[str, Any]) -> list[str]:
    out = []
    for entry in response.get("entry", ()):
        location = entry.get("response", {}).get("location")
        if isinstance(location, str):
            out.append(location.split("/fhir/")[-1])
    return out


def _merge(recs: Sequence[_Rec]) -> dict[str, Any]:
    """One transaction Bundle from several records' entries: an identity (fullUrl) appears
    once, the later record's content winning, as within one converted batch."""
    entries: dict[str, dict[str, Any]] = {}
    for rec in recs:
        for e in rec.entries:
            entries.pop(e["fullUrl"], None)  # keep the later record's position too
            entries[e["fullUrl"]] = e
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction"}
    if entries:
        bundle["entry"] = list(entries.values())
    return bundle


def strip_pixel_data(data: bytes) -> bytes:
    """The DICOM file without its pixel data (PS3.10 file with every element before
    (7FE0,0010) Pixel Data), for the message store: the image itself stays in the PACS.
    A file pydicom cannot re-write is cut to its first 64 KiB (metadata comes first)."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=False)
        return out.getvalue()
    except Exception:  # damaged input: the message must still be stored
        return data[: 64 * 1024]


class FeedIntake:
    """Takes CSV/JSON files, device payloads and DICOM files in for their channels."""

    def __init__(self, repo: Repository, store: MessageStore, submit: Submit, *,
                 clock: Callable[[], int]) -> None:
        self.repo = repo
        self.store = store
        self.submit = submit
        self.clock = clock

    # -- doors -------------------------------------------------------------------------
    def receive_file(self, channel: Channel, raw: bytes, *, name: str | None = None,
                     enabled: bool = True) -> FeedOutcome:
        """A CSV/JSON/NDJSON file for ``channel``. ``name`` (the file or upload name) is the
        sender; without it the channel id is. Raises FhirError for a channel of another
        format or a stopped one (UNAVAILABLE) and when the database is down."""
        _check(channel, ("csv", "json"), enabled)
        message, new = self.store.receive(
            channel.id, sender=name or channel.id, control_id=_sha256(raw),
            message_type=channel.format, raw=raw, encoding=None,
        )
        if not new and message.status in (MessageStatus.PROCESSED, MessageStatus.FILTERED):
            return _duplicate(message)
        return self.process(message, channel)

    def receive_device(self, channel: Channel, payload: bytes, *,
                       enabled: bool = True) -> FeedOutcome:
        """One gateway JSON payload or PHD Bundle (REST body or MQTT message)."""
        _check(channel, ("device",), enabled)
        conversion = _unchecked(payload, _device_context(channel))
        message, new = self.store.receive(
            channel.id, sender=channel.id, control_id=_reading_id(conversion, payload),
            message_type="device", raw=payload, encoding="utf-8",
        )
        if not new and message.status in (MessageStatus.PROCESSED, MessageStatus.FILTERED):
            return _duplicate(message)
        return self._write_single(message, channel, conversion, payload)

    def receive_devices(self, channel: Channel, payloads: Sequence[bytes], *,
                        enabled: bool = True) -> list[FeedOutcome]:
        """Device payloads that arrived together (an MQTT batch): the same outcomes as
        :meth:`receive_device` for each, in order, but stored raw in ONE commit and written
        as ONE transaction Bundle (its messages marked processed in the same transaction).

        Isolation: if the group's write fails for a reason other than the database being
        away, it is rolled back and each payload is written alone, so a bad one is reported
        on its own and the others are kept. With the database away, every payload of the
        group comes back ``queued`` (stored raw; the broker redelivers them)."""
        _check(channel, ("device",), enabled)
        context = _device_context(channel)
        conversions = [_unchecked(p, context) for p in payloads]
        stored = self.store.receive_many([
            Inbound(channel.id, channel.id, _reading_id(conv, payload), "device", payload,
                    "utf-8")
            for conv, payload in zip(conversions, payloads, strict=True)
        ])
        results: list[FeedOutcome | None] = [None] * len(payloads)
        group: list[tuple[int, StoredMessage, Conversion]] = []
        later: list[tuple[int, StoredMessage, Conversion]] = []
        taken: set[int] = set()
        for i, ((message, new), conv) in enumerate(zip(stored, conversions, strict=True)):
            if not new and message.status in (MessageStatus.PROCESSED, MessageStatus.FILTERED):
                results[i] = _duplicate(message)
            elif message.id in taken or not conv.entries:
                later.append((i, message, conv))  # a repeat inside the group, or no readings
            else:
                taken.add(message.id)
                group.append((i, message, conv))
        if len(group) == 1:
            later.insert(0, group.pop())
        if group:
            for i, outcome in self._write_devices(channel, group, payloads):
                results[i] = outcome
        for i, message, conv in sorted(later, key=lambda t: t[0]):
            if message.id in taken:  # its first occurrence was just written (or not)
                current = self.store.get(message.id)
                if current.status in (MessageStatus.PROCESSED, MessageStatus.FILTERED):
                    results[i] = _duplicate(current)
                    continue
                message = current
            taken.add(message.id)
            results[i] = self._write_single(message, channel, conv, payloads[i])
        return [r for r in results if r is not None]

    def _write_devices(self, channel: Channel,
                       group: list[tuple[int, StoredMessage, Conversion]],
                       payloads: Sequence[bytes], *, validated: bool = False
                       ) -> list[tuple[int, FeedOutcome]]:
        """The group's readings as ONE transaction Bundle (an entity several payloads name —
        the device, the patient reference — appears once, as in a CSV batch), every message
        marked processed with its own share of what was written, in the same transaction.
        ``payloads`` are the group's payloads (by its indexes); ``validated`` says whether
        its conversions were made with FHIR validation."""
        started = time.perf_counter_ns()
        # No copy of the entries, although the executor rewrites their references in place:
        # a refused group is converted again from its payloads before anything is retried.
        bundle = _merge([_Rec(None, None, conv.entries) for _, _, conv in group])
        # Position of each entity in the request, hence in the response (FHIR keeps order).
        position = {e["fullUrl"]: n for n, e in enumerate(bundle.get("entry", ()))}
        outcomes = [(i, FeedOutcome("created", [m], _problem_dicts(c.problems), c.records,
                                    c.accepted)) for i, m, c in group]

        def before_commit(tx: Transaction, response: dict[str, Any]) -> None:
            locations = [e.get("response", {}).get("location")
                         for e in response.get("entry", ())]
            marks = []
            for (_, message, conv), (_, outcome) in zip(group, outcomes, strict=True):
                made = [loc.split("/fhir/")[-1] for e in conv.entries
                        if isinstance(loc := locations[position[e["fullUrl"]]], str)]
                outcome.produced = len(made)
                marks.append(ProcessedMark(
                    message.id, produced=made, warnings=outcome.report,
                    patients=_patients(made), ack_code="AA",
                    latency_us=(time.perf_counter_ns() - started) // 1000,
                    fresh=message.attempts == 0 and message.status is MessageStatus.RECEIVED,
                ))
            # The group's messages in a few statements, not two per message.
            self.store.record_processed_many(tx, marks)

        try:
            self.submit(bundle, before_commit)
        except FhirError as err:
            if err.category is Category.UNAVAILABLE:
                error = _error_dict(err)
                return [(i, FeedOutcome("queued", [m], [error], c.records, 0))
                        for i, m, c in group]
            log.info("batched write of %d device payloads failed (%s); writing each alone",
                     len(group), err.category.value)
        except Exception as exc:  # a bug in one payload must not cost the others theirs
            log.error("batched write of %d device payloads failed (%s); writing each alone",
                      len(group), safe_exception(exc))
        else:
            for _, outcome in outcomes:  # committed: what the rows now say, without a read
                outcome.messages = [replace(m, status=MessageStatus.PROCESSED, attempts=1)
                                    for m in outcome.messages]
            return outcomes
        # Converted again, with validation (the refused attempt changed the entries).
        context = _device_context(channel)
        checked = [(i, m, convert_device_payload(payloads[i], context)) for i, m, _ in group]
        if not validated and any(
                new.problems != old.problems
                for (_, _, new), (_, _, old) in zip(checked, group, strict=True)):
            # A payload with an invalid reading loses that reading and reports it: write the
            # group as receive_devices would have grouped these conversions.
            ready = [t for t in checked if t[2].entries]
            done = [(i, self._write_single(m, channel, c)) for i, m, c in checked
                    if not c.entries]
            if len(ready) > 1:
                return done + self._write_devices(channel, ready, payloads, validated=True)
            return done + [(i, self._write_single(m, channel, c)) for i, m, c in ready]
        # Each alone, as before, so a payload the server refuses is reported on its own.
        return [(i, self._write_single(m, channel, c)) for i, m, c in checked]

    def receive_dicom(self, channel: Channel, files: Sequence[tuple[str, bytes]], *,
                      enabled: bool = True) -> FeedOutcome:
        """DICOM files (name, bytes) of one upload. Each is stored without pixel data as its
        own message; the readable ones are written together."""
        _check(channel, ("dicom",), enabled)
        metas: list[tuple[StoredMessage, InstanceMeta]] = []
        outcome = FeedOutcome("created", records=len(files))
        fresh = False
        for name, data in files:
            found = read_instance(io.BytesIO(data), name)
            if isinstance(found, Problem):
                message, _ = self.store.receive(
                    channel.id, sender=channel.id, control_id=_sha256(data),
                    message_type="dicom", raw=data[: 64 * 1024],
                )
                problem = found.as_dict()
                outcome.report.append(problem)
                outcome.messages.append(self.store.record_failure(
                    message.id, errors=[problem], transient=False, ack_code="AR"))
                continue
            message, new = self.store.receive(
                channel.id, sender=channel.id, control_id=found.sop_uid, message_type="dicom",
                raw=strip_pixel_data(data),
            )
            fresh = fresh or new or message.status is not MessageStatus.PROCESSED
            metas.append((message, found))
        if metas and not fresh:
            outcome.result = "duplicate"
            outcome.messages += [m for m, _ in metas]
            outcome.accepted = len(metas)
            return outcome
        if metas:
            written = self._write_dicom(channel, metas)
            outcome.messages += written.messages
            outcome.report += written.report
            outcome.accepted, outcome.produced = written.accepted, written.produced
            if written.result != "created":
                outcome.result = written.result
        elif outcome.report:
            outcome.result = "error"
        return outcome

    # -- reprocessing --------------------------------------------------------------------
    def process(self, message: StoredMessage, channel: Channel) -> FeedOutcome:
        """Convert and write a stored message (first time, resend of a failed one, retry,
        or an operator's reprocess after a mapping fix). Idempotent."""
        if message.raw is None:
            raise FhirError(Category.GONE, f"message {message.id}'s raw content was purged / "
                                           f"消息 {message.id} 的原始内容已清除")
        if channel.format in ("csv", "json"):
            return self._process_file(message, channel)
        if channel.format == "device":
            conversion = _unchecked(message.raw, _device_context(channel))
            return self._write_single(message, channel, conversion, message.raw)
        if channel.format == "dicom":
            found = read_instance(io.BytesIO(message.raw), message.control_id)
            if isinstance(found, Problem):
                failed = self.store.record_failure(
                    message.id, errors=[found.as_dict()], transient=False, ack_code="AR")
                return FeedOutcome("error", [failed], [found.as_dict()], records=1)
            return self._write_dicom(channel, [(message, found)])
        raise FhirError(Category.NOT_SUPPORTED, f"channel format {channel.format} is not a "
                                                f"feed / 通道格式 {channel.format} 不是数据文件")

    # -- files -----------------------------------------------------------------------------
    def _process_file(self, message: StoredMessage, channel: Channel) -> FeedOutcome:
        started = time.perf_counter_ns()
        try:
            mapping = channel_mapping(channel)
        except MappingError as exc:
            report = [{"reason": "bad-mapping", "severity": "error", "field": i.where,
                       "en": i.en, "zh": i.zh} for i in exc.issues]
            failed = self.store.record_failure(message.id, errors=report, transient=False,
                                               ack_code="AR")
            return FeedOutcome("error", [failed], report)
        assert message.raw is not None
        outcome = FeedOutcome("created", [message])
        produced: list[str] = []
        self._lease(message.id)
        try:
            for group in _groups(_records(message.raw, channel.format, mapping, outcome),
                                 mapping.batch_size):
                self._write_records(group, outcome, produced)
                self._lease(message.id)
        except _Transient as exc:
            failed = self.store.record_failure(
                message.id, errors=[_error_dict(exc.err)], transient=True, ack_code="AE",
                max_attempts=channel.max_attempts)
            return FeedOutcome("queued", [failed], [*outcome.report, _error_dict(exc.err)],
                               outcome.records, outcome.accepted, outcome.produced)
        report = outcome.report
        if len(report) > _MAX_REPORT:
            rest = len(report) - _MAX_REPORT
            report = [*report[:_MAX_REPORT], {
                "reason": "truncated", "severity": "warning",
                "en": f"{rest} more problems not listed", "zh": f"另有 {rest} 个问题未列出"}]
        if outcome.accepted == 0 and any(p.get("severity") == "error" for p in report):
            failed = self.store.record_failure(message.id, errors=report, transient=False,
                                               ack_code="AR")
            return FeedOutcome("error", [failed], outcome.report, outcome.records, 0,
                               outcome.produced)
        with self.repo.transaction() as tx:
            self.store.record_processed(
                tx, message.id, produced=produced[:_MAX_PRODUCED], warnings=report,
                patients=_patients(produced[:_MAX_PRODUCED]), ack_code="AA",
                latency_us=(time.perf_counter_ns() - started) // 1000,
            )
        outcome.messages = [self.store.get(message.id)]
        return outcome

    def _write_records(self, recs: list[_Rec], outcome: FeedOutcome,
                       produced: list[str]) -> None:
        """Write ``recs`` in one transaction; when the server refuses it for a reason other
        than a transient one, split it to isolate the refused records."""
        # The executor rewrites references (urn:uuid -> the ids it assigned) in place, and
        # when this batch is refused and split, the halves must be written as converted, not
        # pointing at ids of a rolled-back attempt: a refused batch's records are mapped again
        # (_refreshed). Only records that cannot be (none from _records) need a copy first,
        # which cost as much as the rest of the conversion.
        remappable = all(rec.unchecked is not None for rec in recs)
        bundle = _merge(recs)
        if not remappable:
            bundle = orjson.loads(orjson.dumps(bundle))
        if "entry" not in bundle:
            return
        try:
            response = self.submit(bundle, _noop)
        except FhirError as err:
            if err.category in _TRANSIENT:
                raise _Transient(err) from None
            valid = self._refreshed(recs, outcome)
            if len(valid) < len(recs):  # the invalid ones are now reported as such
                self._write_records(valid, outcome, produced)
                return
            if len(recs) == 1:
                outcome.accepted -= 1
                outcome.report.append(_refused(err, recs[0]))
                return
            half = len(recs) // 2
            self._write_records(recs[:half], outcome, produced)
            self._write_records(recs[half:], outcome, produced)
            return
        made = _produced(response)
        outcome.produced += len(made)
        if len(produced) < _MAX_PRODUCED:
            produced.extend(made[: _MAX_PRODUCED - len(produced)])

    @staticmethod
    def _refreshed(recs: list[_Rec], outcome: FeedOutcome) -> list[_Rec]:
        """After a refused write of ``recs``: each record mapped again (fresh entries for the
        next attempt), and ``recs`` without those whose resources fail FHIR validation, each
        of those reported exactly as a validating conversion reports it (its problems at its
        place in the report, not accepted). A record is validated once: the first refusal of
        a group checks all of it, before any split."""
        bad: list[tuple[_Rec, list[Problem]]] = []
        for rec in recs:
            if rec.unchecked is None:
                continue  # written from a copy
            rec.entries, problems = rec.unchecked.remap(validate=not rec.checked)
            rec.checked = True
            if problems:
                bad.append((rec, problems))
        if not bad:
            return recs
        # From the last record back, so the report slices of earlier records stay in place
        # (replacing one slice moves everything after it).
        for rec, problems in reversed(bad):
            outcome.report[rec.report] = _problem_dicts(problems)
            outcome.accepted -= 1
        dropped = {id(rec) for rec, _ in bad}
        return [rec for rec in recs if id(rec) not in dropped]

    def _lease(self, message_id: int) -> None:
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE ingest_messages SET status = ?, next_attempt_at = ? WHERE id = ?",
                (str(MessageStatus.QUEUED), self.clock() + _LEASE_US, message_id),
            )

    # -- single-transaction payloads -------------------------------------------------------
    def _write_single(self, message: StoredMessage, channel: Channel,
                      conversion: Conversion, payload: bytes | None = None) -> FeedOutcome:
        """Write one payload's ``conversion`` and mark ``message`` processed with it.
        ``payload`` when the conversion was made without validation: if the write is
        refused, the payload is converted again with it, and when that leaves readings out
        (reported as invalid) the result is written instead, as if converted so at first."""
        started = time.perf_counter_ns()
        report = _problem_dicts(conversion.problems)
        outcome = FeedOutcome("created", [message], report, conversion.records,
                              conversion.accepted)
        if not conversion.entries:
            if not report:
                report.append({"reason": "missing-value", "severity": "error",
                               "en": "the payload holds no readings",
                               "zh": "该数据中没有测量值"})
            failed = self.store.record_failure(message.id, errors=report, transient=False,
                                               ack_code="AR")
            return FeedOutcome("error", [failed], report, conversion.records, 0)
        recheck = None
        if payload is not None:
            def recheck() -> FeedOutcome | None:
                checked = convert_device_payload(payload, _device_context(channel))
                if checked.problems == conversion.problems:  # every reading valid
                    return None
                return self._write_single(message, channel, checked)
        return self._submit_marking(
            [message], channel, conversion.bundle, outcome, started, recheck)

    def _write_dicom(self, channel: Channel,
                     metas: Sequence[tuple[StoredMessage, InstanceMeta]]) -> FeedOutcome:
        started = time.perf_counter_ns()
        existing = self._stored_studies({m.study_uid for _, m in metas})
        conversion = build_imaging_studies([m for _, m in metas], _dicom_context(channel),
                                           existing)
        report = _problem_dicts(conversion.problems)
        bad_sources = {p.source for p in conversion.problems if p.severity == "error"}
        good = [m for m, meta in metas if meta.source not in bad_sources]
        outcome = FeedOutcome("created", good, report, len(metas), conversion.accepted)
        for message, meta in metas:
            if meta.source in bad_sources:
                errors = [p for p in report if p.get("source") == meta.source]
                outcome.messages.append(self.store.record_failure(
                    message.id, errors=errors, transient=False, ack_code="AR"))
        if not conversion.entries:
            outcome.result = "error"
            return outcome
        return self._submit_marking(good, channel, conversion.bundle, outcome, started)

    def _submit_marking(self, messages: list[StoredMessage], channel: Channel,
                        bundle: dict[str, Any], outcome: FeedOutcome, started: int,
                        recheck: Callable[[], FeedOutcome | None] | None = None
                        ) -> FeedOutcome:
        """Write ``bundle`` and mark ``messages`` processed in the same transaction. When
        the write is refused (not transiently), ``recheck`` may answer instead: it returns
        the outcome of another attempt, or None to record this failure."""
        warnings = outcome.report
        try:
            self.submit(bundle, self._marking(messages, outcome, started))
        except FhirError as err:
            transient = err.category in _TRANSIENT
            if not transient and recheck is not None:
                instead = recheck()
                if instead is not None:
                    return instead
            error = _error_dict(err)
            failed = []
            for m in messages:
                try:
                    failed.append(self.store.record_failure(
                        m.id, errors=[*warnings, error], transient=transient,
                        ack_code="AE" if transient else CATEGORY_INFO[err.category].hl7v2_ack,
                        max_attempts=channel.max_attempts))
                except FhirError:
                    failed.append(m)  # still "received": the retry worker finds it
            done = [m for m in outcome.messages if m not in messages]
            return FeedOutcome("queued" if transient else "error", done + failed,
                               [*warnings, error], outcome.records, 0)
        ids = {m.id for m in messages}
        outcome.messages = [m for m in outcome.messages if m.id not in ids] + [
            self.store.get(i) for i in sorted(ids)]
        return outcome

    def _marking(self, messages: list[StoredMessage], outcome: FeedOutcome, started: int
                 ) -> Callable[[Transaction, dict[str, Any]], None]:
        """The ``before_commit`` that marks ``messages`` processed with what was written."""
        warnings = outcome.report

        def before_commit(tx: Transaction, response: dict[str, Any]) -> None:
            made = _produced(response)
            outcome.produced = len(made)
            for m in messages:
                self.store.record_processed(
                    tx, m.id, produced=made[:_MAX_PRODUCED], warnings=warnings,
                    patients=_patients(made), ack_code="AA",
                    latency_us=(time.perf_counter_ns() - started) // 1000,
                    fresh=m.attempts == 0 and m.status is MessageStatus.RECEIVED,
                )

        return before_commit

    def _stored_studies(self, uids: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for uid in sorted(uids):
            system, value = study_identifier(uid)
            query = parse_search("ImagingStudy", [("identifier", f"{system}|{value}")])
            page = self.repo.search(query)
            if page.matches:
                found[uid] = page.matches[0].resource
        return found


# -- helpers ---------------------------------------------------------------------------------
def _check(channel: Channel, formats: tuple[str, ...], enabled: bool) -> None:
    if channel.format not in formats:
        raise FhirError(
            Category.INVALID,
            f"channel {channel.id} takes {channel.format}, not {'/'.join(formats)} / "
            f"通道 {channel.id} 接收 {channel.format} 格式，而非 {'/'.join(formats)}",
        )
    if not enabled:
        raise FhirError(Category.UNAVAILABLE, f"channel {channel.id} is stopped; resend later / "
                                              f"通道 {channel.id} 已停止，请稍后重发")


def _duplicate(message: StoredMessage) -> FeedOutcome:
    return FeedOutcome("duplicate", [message], list(message.warnings),
                       produced=len(message.produced))


def channel_mapping(channel: Channel) -> FeedMapping:
    """The channel's feed mapping: ``channel.mapping`` is the mapping document itself, or
    ``{"file": path}`` naming a TOML mapping file. A mapping without an organization speaks
    for the channel's. Raises MappingError."""
    document = channel.mapping
    if "file" in document:
        path = Path(str(document["file"]))
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise MappingError([MappingIssue(
                "mapping.file", f"cannot read the mapping file ({exc.__class__.__name__})",
                "无法读取映射文件")]) from None
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return parse_mapping_toml(text)  # raises, naming the syntax error
    feed = document.get("feed")
    if isinstance(feed, dict) and "organization" not in feed:
        document = {**document, "feed": {**feed, "organization": channel.organization}}
    return parse_mapping(document)


def _records(raw: bytes, fmt: str, mapping: FeedMapping, outcome: FeedOutcome
             ) -> Iterator[_Rec]:
    """Each input record's entries, converting one record at a time (so a refused batch can
    be split by record); problems go to ``outcome.report``."""
    convert = convert_csv if fmt == "csv" else convert_json
    # Without validation here: the write validates every resource (after the write
    # transforms, which is what is stored), so checking here too cost each record its
    # validation twice. Only a refused write has its records checked (_write_records).
    for conv in convert(io.BytesIO(raw), replace(mapping, batch_size=1), validate=False):
        base = len(outcome.report)
        outcome.report.extend(_problem_dicts(conv.problems))
        outcome.records += conv.records
        outcome.accepted += conv.accepted
        if conv.records and "entry" in conv.bundle:
            line = next((p.line for p in conv.problems if p.row == conv.first_row), None)
            rec = _Rec(conv.first_row, line, conv.bundle["entry"])
            if conv.unchecked:  # batch_size 1: this record
                [unchecked] = conv.unchecked
                rec.unchecked = unchecked
                rec.report = slice(base + unchecked.start, base + unchecked.end)
            yield rec


def _groups(recs: Iterator[_Rec], size: int) -> Iterator[list[_Rec]]:
    group: list[_Rec] = []
    for rec in recs:
        group.append(rec)
        if len(group) >= size:
            yield group
            group = []
    if group:
        yield group


def _patients(produced: Sequence[str]) -> list[str]:
    return [p.split("/_history")[0] for p in produced if p.startswith("Patient/")]


def _unchecked(payload: bytes, context: DeviceContext) -> Conversion:
    """``payload`` converted without FHIR validation: the write validates every resource
    anyway, and only a refused write needs the conversion's own verdict per reading (then
    it is converted again with validation: ``_write_single``, ``_write_devices``)."""
    return convert_device_payload(payload, context, validate=False)


def _device_context(channel: Channel) -> DeviceContext:
    tz = channel.mapping.get("timezone")
    if isinstance(tz, str):
        try:
            return DeviceContext(channel.organization, parse_offset(tz))
        except ValueError:
            pass
    return DeviceContext(channel.organization)


def _dicom_context(channel: Channel) -> DicomContext:
    ns = channel.identifier_namespace.rstrip("/:")
    sep = ":" if ns.startswith("urn:") else "/"
    m = channel.mapping
    return DicomContext(
        patient_system=str(m.get("patient_system") or f"{ns}{sep}mrn"),
        accession_system=str(m.get("accession_system") or f"{ns}{sep}accession"),
        organization=channel.organization,
    )


def _reading_id(conversion: Conversion, payload: bytes) -> str:
    """The readings' identifiers (device serial / UTC time / LOINC), so the same reading
    sent twice — or once by REST and once over MQTT — is one message; else the payload hash."""
    ids = sorted(
        ident["value"]
        for e in conversion.entries
        if e["resource"].get("resourceType") == "Observation"
        for ident in e["resource"].get("identifier", ())
        if ident.get("system") == READING_SYSTEM
    )
    if not ids:
        return _sha256(payload)
    text = "|".join(ids)
    return text if len(text) <= 200 else _sha256(orjson.dumps(ids))

"""The integration engine's operator API under ``/api/ingest`` (JSON), and Prometheus-style
metrics at ``/metrics``.

    GET  /api/ingest/channels                        channels, enabled flags, totals
    PUT  /api/ingest/channels/{id}                   create or replace a channel (JSON config)
    POST /api/ingest/channels/{id}/start | /stop     enable / disable
    POST /api/ingest/channels/{id}/hl7v2             one raw HL7 v2 message → its ACK
    GET  /api/ingest/messages?status=&channel=&since=&until=&control_id=&patient=&type=
                               &_count=&_offset=     search the message store
    GET  /api/ingest/messages/{id}                   one message: raw beside what it produced
    POST /api/ingest/messages/{id}/reprocess         process a stored message again now
    POST /api/ingest/reprocess                       {"ids": [...]} or {"status", "channel"}
    GET  /api/ingest/stats?since=&channel=           counts and latency per channel and hour

Failures are OperationOutcomes with the status of their category (server/errors.py).
Times are microseconds since the epoch, as everywhere in Huitong's own APIs.

A stored message is personal health information (the raw message names the patient, and
even a listing says who had which message when), so with the audit log on every call that
shows messages or sends them through processing again is an audit entry (issue 5, "Audit")
appended before the response leaves: ``message-read`` for a message (and a failed attempt
at one) and for a listing, ``message-reprocess`` for reprocessing, each by the operator, at
the time of the call, with its outcome, naming the patients the messages concern — the
Patient records they produced and the patients found by the identifiers they carried — and
the message ids, never their content.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from huitong.audit.entry import Outcome
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.ingest.app_acks import AppAckStatus
from huitong.ingest.channels import ChannelConfigError, channel_from_config
from huitong.ingest.message_store import ChannelState, MessageQuery, MessageStatus
from huitong.ingest.service import IngestService
from huitong.server.api_support import api_endpoint, json_response, read_body, read_json
from huitong.server.request import ServerContext
from huitong.store.repository import Transaction

__all__ = ["in_transaction", "ingest_routes"]

HL7V2_MEDIA = "x-application/hl7-v2+er7"
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class _Joined:
    """The repository seen from inside a write transaction someone else opened:
    ``transaction()`` hands out that transaction (its caller commits or rolls back),
    everything else is the repository itself."""

    def __init__(self, repo: Any, tx: Transaction) -> None:
        self._repo, self._tx = repo, tx

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        yield self._tx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)


def in_transaction(ctx: ServerContext, tx: Transaction) -> ServerContext:
    """``ctx`` whose transaction executor writes into ``tx``: the batched HL7 v2 intake runs
    a group of messages' Bundles through ``run_transaction`` in one database transaction."""
    return dataclasses.replace(ctx, repo=_Joined(ctx.repo, tx))


def _endpoint(work: Callable[[Request], Awaitable[Response]], auth: Any = None,
              ) -> Callable[[Request], Awaitable[Response]]:  # fmt: skip
    return api_endpoint(
        work, auth, what=("the integration API", "数据接入接口"),
        errors={ChannelConfigError: lambda e: FhirError(
            Category.INVALID, f"{e.field}: {e.en} / {e.zh}")},
    )


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise FhirError(
            Category.INVALID, f"{name} must be a whole number / {name} 必须是整数"
        ) from None


async def _body(request: Request, limit: int = _MAX_MESSAGE_BYTES) -> bytes:
    return await read_body(request, limit)


async def _json_body(request: Request) -> Any:
    return await read_json(request)


def _channel_json(state: ChannelState, totals: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {**state.channel.to_config(), "enabled": state.enabled,
            "updatedAt": state.updated_at, "messages": totals.get(state.channel.id, {})}


def ingest_routes(service: IngestService, auth: Any = None, audit: Any = None) -> list[Route]:
    """The routes, bound to ``service`` (every repository call runs in the thread pool).
    With ``auth`` (the authorization server), every call needs an operator's bearer token.
    With ``audit`` (the server's :class:`~huitong.audit.recording.AuditRecorder`), the calls
    that show or reprocess messages are audited (see the module docstring)."""

    def audited(request: Request, action: str, message_ids: list[int], *,
                outcome: Outcome = Outcome.SUCCESS, what: str = "") -> None:  # fmt: skip
        """Append the entry for ``message_ids`` (in the worker thread, before responding)."""
        if audit is None:
            return
        concerned = service.store.patients_of_many(message_ids) if message_ids else []
        ids = ", ".join(str(i) for i in message_ids[:50])
        more = f" and {len(message_ids) - 50} more" if len(message_ids) > 50 else ""
        audit.record_operator_access(
            request, action, code="operator-ingest-messages",
            patients=_patient_ids(service, concerned),
            detail=f"{what or 'ingest messages'} {ids}{more}".strip(), outcome=outcome,
        )  # fmt: skip

    async def audited_call(request: Request, action: str, message_id: int,
                           call: Callable[[], Any]) -> Any:
        """``call()`` in the thread pool, audited as ``action`` on one message: a failure
        (a message that is not there) is recorded too, as a failed FHIR read is."""
        try:
            result = await run_in_threadpool(call)
        except FhirError:
            await run_in_threadpool(audited, request, action, [],
                                    outcome=Outcome.MINOR_FAILURE,
                                    what=f"ingest message {message_id}")  # fmt: skip
            raise
        await run_in_threadpool(audited, request, action, [message_id])
        return result

    def totals() -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for channel, status, n in service.store.totals():
            out.setdefault(channel, {})[status] = n
        return out

    async def list_channels(request: Request) -> Response:
        states, counts = await run_in_threadpool(
            lambda: (service.store.channels(), totals())
        )
        return json_response({"channels": [_channel_json(s, counts) for s in states]})

    async def put_channel(request: Request) -> Response:
        config = await _json_body(request)
        if not isinstance(config, dict):
            raise FhirError(Category.INVALID, "expected a JSON object / 需要 JSON 对象")
        cid = request.path_params["id"]
        if config.setdefault("id", cid) != cid:
            raise FhirError(Category.INVALID,
                            "id in the body differs from the URL / 请求体中的 id 与地址不一致")
        channel = channel_from_config(config)
        state = await run_in_threadpool(service.put_channel, channel)
        return json_response(_channel_json(state, {}))

    def toggle(enabled: bool) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            state = await run_in_threadpool(service.set_enabled, request.path_params["id"],
                                            enabled)
            return json_response(_channel_json(state, {}))

        return run

    async def post_hl7v2(request: Request) -> Response:
        raw = await _body(request)
        if not raw.strip():
            raise FhirError(Category.INVALID, "empty message / 消息为空")
        result = await run_in_threadpool(service.receive_hl7v2, raw,
                                         channel_id=request.path_params["id"])
        body = b"".join(result.acks)
        status = 200 if result.ack_code == "AA" else 422 if result.ack_code == "AR" else 503
        if result.ack_code == "CA":  # enhanced mode, application ACK to the return address
            status = 202
        if result.ack_code == "AE" and result.message is not None:
            status = 422 if _permanent(service, result.message.id) else 503
        return Response(body, status, media_type=HL7V2_MEDIA)

    async def search_messages(request: Request) -> Response:
        q = request.query_params
        status = q.get("status")
        if status and status not in service.statuses():
            raise FhirError(Category.INVALID, f"unknown status '{status}' / 未知状态")
        query = MessageQuery(
            status=MessageStatus(status) if status else None,
            channel=q.get("channel") or None,
            since=_int(request, "since"), until=_int(request, "until"),
            control_id=q.get("control_id") or None, patient=q.get("patient") or None,
            message_type=q.get("type") or None,
            count=_int(request, "_count", 50) or 50, offset=_int(request, "_offset", 0) or 0,
        )
        found, total = await run_in_threadpool(service.store.search, query)
        await run_in_threadpool(audited, request, "message-read", [m.id for m in found],
                                what="ingest message search")  # fmt: skip
        return json_response({"total": total, "messages": [m.summary() for m in found]})

    async def get_message(request: Request) -> Response:
        message_id = _path_int(request)
        message, patients, app_ack = await audited_call(
            request, "message-read", message_id,
            lambda: (service.store.get(message_id), service.store.patients_of(message_id),
                     service.app_acks.for_message(message_id)),
        )
        body = message.summary()
        body.update(
            rawText=_text(message.raw, message.encoding),
            rawBase64=base64.b64encode(message.raw).decode() if message.raw else None,
            rawPurgedAt=message.raw_purged_at, encoding=message.encoding,
            produced=message.produced, warnings=message.warnings, errorDetails=message.errors,
            patients=patients, nextAttemptAt=message.next_attempt_at,
            processedAt=message.processed_at,
            # Enhanced mode: the application ACK owed to the sender's return address.
            applicationAck=app_ack.summary() if app_ack else None,
        )
        return json_response(body)

    async def reprocess_one(request: Request) -> Response:
        message_id = _path_int(request)
        message = await audited_call(request, "message-reprocess", message_id,
                                     lambda: service.reprocess(message_id))
        return json_response(message.summary())

    async def reprocess_many(request: Request) -> Response:
        spec = await _json_body(request)
        if not isinstance(spec, dict):
            raise FhirError(Category.INVALID, "expected a JSON object / 需要 JSON 对象")
        ids = spec.get("ids")
        if ids is None:
            status = spec.get("status", "error")
            if status not in service.statuses():
                raise FhirError(Category.INVALID, f"unknown status '{status}' / 未知状态")
            query = MessageQuery(status=MessageStatus(status), channel=spec.get("channel"),
                                 count=1000)
            found, _ = await run_in_threadpool(service.store.search, query)
            ids = [m.id for m in found]
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise FhirError(Category.INVALID, "ids must be a list of numbers / ids 必须是数字列表")
        queued = await run_in_threadpool(service.store.requeue, ids)
        await run_in_threadpool(audited, request, "message-reprocess", ids)
        return json_response({"queued": queued})

    async def list_app_acks(request: Request) -> Response:
        # Enhanced-mode application ACKs owed to senders (huitong.ingest.app_acks);
        # ?status=undelivered lists the ones whose tries ran out.
        status = request.query_params.get("status")
        if status and status not in {str(s) for s in AppAckStatus}:
            raise FhirError(Category.INVALID, f"unknown status '{status[:40]}' / 未知状态")
        found, total = await run_in_threadpool(lambda: service.app_acks.search(
            status=AppAckStatus(status) if status else None,
            channel=request.query_params.get("channel") or None,
            count=_int(request, "_count", 50) or 50, offset=_int(request, "_offset", 0) or 0,
        ))
        return json_response({"total": total, "acks": [a.summary() for a in found]})

    async def retry_app_ack(request: Request) -> Response:
        ack_id = _path_int(request)
        await run_in_threadpool(service.app_acks.get, ack_id)  # NOT_FOUND first
        await run_in_threadpool(lambda: service.app_acks.rearm(ack_ids=[ack_id]))
        ack = await run_in_threadpool(service.app_acks.get, ack_id)
        return json_response(ack.summary())

    async def stats(request: Request) -> Response:
        since = _int(request, "since", 0) or 0
        rows = await run_in_threadpool(
            lambda: service.store.counts(since=since, channel=request.query_params.get("channel"))
        )
        return json_response({"buckets": rows})

    return [
        Route("/api/ingest/channels", _endpoint(list_channels, auth), methods=["GET"]),
        Route("/api/ingest/channels/{id}", _endpoint(put_channel, auth), methods=["PUT"]),
        Route("/api/ingest/channels/{id}/start", _endpoint(toggle(True), auth),
              methods=["POST"]),
        Route("/api/ingest/channels/{id}/stop", _endpoint(toggle(False), auth),
              methods=["POST"]),
        Route("/api/ingest/channels/{id}/hl7v2", _endpoint(post_hl7v2, auth),
              methods=["POST"]),
        Route("/api/ingest/messages", _endpoint(search_messages, auth), methods=["GET"]),
        Route("/api/ingest/messages/{id}", _endpoint(get_message, auth), methods=["GET"]),
        Route("/api/ingest/messages/{id}/reprocess", _endpoint(reprocess_one, auth),
              methods=["POST"]),
        Route("/api/ingest/reprocess", _endpoint(reprocess_many, auth), methods=["POST"]),
        Route("/api/ingest/stats", _endpoint(stats, auth), methods=["GET"]),
        Route("/api/ingest/app-acks", _endpoint(list_app_acks, auth), methods=["GET"]),
        Route("/api/ingest/app-acks/{id}/retry", _endpoint(retry_app_ack, auth),
              methods=["POST"]),
        Route("/metrics", _endpoint(_metrics(service), auth), methods=["GET"]),
    ]


def _path_int(request: Request) -> int:
    raw = request.path_params["id"]
    if not raw.isdigit():
        raise FhirError(Category.NOT_FOUND, f"no message {raw[:40]} / 没有该消息")
    return int(raw)


def _escape(part: str) -> str:
    """A token part as a search value (https://hl7.org/fhir/R4/search.html#escaping)."""
    return (part.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$")
            .replace("|", "\\|"))  # fmt: skip


def _patient_ids(service: IngestService, concerned: list[str]) -> list[str]:
    """The Patient ids an audit entry names for messages that concern ``concerned``
    (:meth:`~huitong.ingest.message_store.MessageStore.patients_of_many`): the Patient
    records they produced, and the Patients that carry the identifiers they named (a
    message that failed produced nothing, yet names its patient) — found in one search per
    100 identifiers; an identifier no Patient carries names nobody (and is never copied
    into the log)."""
    ids = {p.split("/", 1)[1] for p in concerned if p.startswith("Patient/")}
    # an identifier without a value would search "any value of the system": every patient
    idents = sorted(
        p for p in concerned if "|" in p and not p.startswith("Patient/") and p.partition("|")[2]
    )
    for start in range(0, len(idents), 100):
        values = ",".join(
            f"{_escape(system)}|{_escape(value)}"
            for system, _, value in (i.partition("|") for i in idents[start : start + 100])
        )
        query = parse_search("Patient", [("identifier", values), ("_count", "1000")])
        ids.update(s.id for s in service.repo.search(query).matches)
    return sorted(ids)


def _permanent(service: IngestService, message_id: int) -> bool:
    return service.store.get(message_id).status is MessageStatus.ERROR


def _text(raw: bytes | None, encoding: str | None) -> str | None:
    if raw is None:
        return None
    return raw.decode(encoding or "utf-8", errors="replace").replace("\r", "\n")


def _metrics(service: IngestService) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        rows = await run_in_threadpool(service.store.totals)
        lines = [
            "# HELP huitong_ingest_messages Inbound messages by channel and status.",
            "# TYPE huitong_ingest_messages gauge",
        ]
        for channel, status, n in rows:
            lines.append(f'huitong_ingest_messages{{channel="{channel}",status="{status}"}} {n}')
        return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return metrics

"""The operator console: channels, the message store, reprocessing, the system page.

    GET  /app/operator/channels                 channels, counts, messages per hour, errors
    GET  /app/operator/messages?status=&channel=&control_id=&patient=&offset=
    GET  /app/operator/messages/{id}            raw beside the FHIR it produced
    POST /app/operator/messages/{id}/reprocess  (form with the session's CSRF token)
    GET  /app/operator/system                   health, database, version, migrations

Everything goes through :class:`~huitong.ingest.service.IngestService` and its message
store's read API; without an ingest service the pages say the engine is not running.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import huitong
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.ingest.message_store import MessageQuery, MessageStatus, StoredMessage
from huitong.ingest.service import IngestService
from huitong.store.migrate import migrations_for
from huitong.store.repository import Repository
from huitong.web.charts import Chart, Point, Series
from huitong.web.csrf import valid_csrf
from huitong.web.display import reference_parts
from huitong.web.rendering import APP_PATH, View
from huitong.web.site import Site

__all__ = ["channels_page", "message_page", "messages_page", "reprocess", "system_page"]

_HOUR_US = 3_600_000_000
PAGE_SIZE = 50
_MAX_PRODUCED_SHOWN = 25
_MAX_FORM_BYTES = 4096


def _unavailable(site: Site, view: View, status: int = 200) -> Response:
    return site.pages.render(view, "unavailable.html", status, feature="ingest",
                             section="operator", subsection="channels")


def _bad(view: View, key: str, **values: object) -> FhirError:
    return FhirError(Category.INVALID, view.t(key, **values))


@dataclass(frozen=True, slots=True)
class ChannelRow:
    id: str
    name: str
    organization: str
    transport: str
    format: str
    enabled: bool | None  # None: not a configured channel (unrouted messages)
    counts: dict[str, int]
    last_day: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _channel_overview(ingest: IngestService, since: int) -> dict[str, Any]:
    store = ingest.store
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for channel_id, status, n in store.totals():
        totals[channel_id][status] += n
    buckets = store.counts(since=since)
    recent: Counter[str] = Counter()
    for bucket in buckets:
        recent[bucket["channel"]] += bucket["received"]
    rows = [ChannelRow(s.channel.id, s.channel.name, s.channel.organization, s.channel.transport,
                       s.channel.format, s.enabled, dict(totals.pop(s.channel.id, {})),
                       recent[s.channel.id]) for s in store.channels()]
    rows += [ChannelRow(cid, cid, "", "", "", None, dict(counts), recent[cid])
             for cid, counts in sorted(totals.items())]
    errors, error_total = store.search(MessageQuery(status=MessageStatus.ERROR, count=10))
    return {"rows": rows, "buckets": buckets, "errors": errors, "error_total": error_total}


def _per_hour_chart(buckets: list[dict[str, Any]], since: int, now: int, view: View) -> Chart:
    """Received messages per hour and channel over the window, empty hours as zero."""
    first = since // _HOUR_US
    hours = range(first, now // _HOUR_US + 1)
    per_channel: dict[str, dict[int, int]] = defaultdict(dict)
    errors: dict[int, int] = defaultdict(int)
    for bucket in buckets:
        hour = bucket["hour"] // _HOUR_US
        per_channel[bucket["channel"]][hour] = bucket["received"]
        errors[hour] += bucket["errors"]

    def at(hour: int) -> datetime:
        return datetime.fromtimestamp(hour * 3600, UTC)

    series = [Series(channel, [Point(at(h), float(counts.get(h, 0))) for h in hours],
                     tone=i % 5, markers=False)
              for i, (channel, counts) in enumerate(sorted(per_channel.items()))]
    series.append(Series(view.t("operator.errors_series"),
                         [Point(at(h), float(errors.get(h, 0))) for h in hours], tone=5,
                         markers=False))
    total = sum(b["received"] for b in buckets)
    return Chart(
        chart_id="chart-per-hour",
        title=view.t("operator.per_hour.title"),
        description=view.t("operator.per_hour.desc", n=total, channels=len(per_channel),
                           errors=sum(errors.values())),
        unit=view.t("operator.per_hour.unit"),
        series=series,
        integer=True,
    )


async def channels_page(site: Site, request: Request, view: View) -> Response:
    ingest = site.services.ingest
    if ingest is None:
        return _unavailable(site, view)
    now = site.services.clock()
    since = now - 24 * _HOUR_US
    overview = await site.call(_channel_overview, ingest, since)
    chart = _per_hour_chart(overview["buckets"], since, now, view)
    return site.pages.render(view, "operator_channels.html", chart=chart, section="operator",
                             subsection="channels", **overview)


def _int_param(request: Request, name: str, view: View, default: int = 0) -> int:
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise _bad(view, "error.bad_number", name=name)
    return int(raw)


async def messages_page(site: Site, request: Request, view: View) -> Response:
    ingest = site.services.ingest
    if ingest is None:
        return _unavailable(site, view)
    params = request.query_params
    status_raw = params.get("status", "")
    if status_raw and status_raw not in {s.value for s in MessageStatus}:
        raise _bad(view, "error.bad_status", value=status_raw[:40])
    offset = _int_param(request, "offset", view)
    filters = {k: params.get(k, "").strip()[:200] for k in ("channel", "control_id", "patient")}
    query = MessageQuery(
        status=MessageStatus(status_raw) if status_raw else None,
        channel=filters["channel"] or None, control_id=filters["control_id"] or None,
        patient=filters["patient"] or None, count=PAGE_SIZE, offset=offset,
    )
    (messages, total), channels = await site.call(
        lambda: (ingest.store.search(query), ingest.store.channels()))
    return site.pages.render(
        view, "operator_messages.html", messages=messages, total=total, offset=offset,
        page_size=PAGE_SIZE, status=status_raw, filters=filters,
        statuses=[s.value for s in MessageStatus],
        channel_ids=[s.channel.id for s in channels], section="operator",
        subsection="messages",
    )


def _raw_text(message: StoredMessage) -> list[str]:
    if message.raw is None:
        return []
    try:
        text = message.raw.decode(message.encoding or "utf-8", errors="replace")
    except LookupError:
        text = message.raw.decode("utf-8", errors="replace")
    return [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line]


@dataclass(frozen=True, slots=True)
class Produced:
    reference: str  # Type/id
    version: str
    json: str  # pretty JSON of the version the message wrote, '' if it cannot be read
    patient_id: str | None


def _produced(repo: Repository, message: StoredMessage) -> list[Produced]:
    # through the operator's view: what the policy lets an operator read of the FHIR side
    shown = []
    for entry in message.produced[:_MAX_PRODUCED_SHOWN]:
        parts = reference_parts(entry)
        if parts is None:
            continue
        rtype, rid = parts
        version = entry.rsplit("/_history/", 1)[1] if "/_history/" in entry else ""
        try:
            stored = (repo.vread(rtype, rid, int(version)) if version.isdigit()
                      else repo.read(rtype, rid))
            pretty = orjson.dumps(stored.resource, option=orjson.OPT_INDENT_2).decode()
        except FhirError:
            pretty = ""
        shown.append(Produced(f"{rtype}/{rid}", version, pretty,
                              rid if rtype == "Patient" else None))
    return shown


async def message_page(site: Site, request: Request, view: View) -> Response:
    ingest = site.services.ingest
    if ingest is None:
        return _unavailable(site, view)
    raw_id = request.path_params["message_id"]
    if not raw_id.isdigit() or len(raw_id) > 18:
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_message"))
    message_id = int(raw_id)
    message = await site.call(ingest.store.get, message_id)
    produced = await site.call(_produced, site.repo(view), message)
    patients = await site.call(ingest.store.patients_of, message_id)
    return site.pages.render(
        view, "operator_message.html", message=message, raw_lines=_raw_text(message),
        produced=produced, patients=patients,
        reprocessed=request.query_params.get("reprocessed") == "1",
        section="operator", subsection="messages",
    )


async def reprocess(site: Site, request: Request, view: View) -> Response:
    ingest = site.services.ingest
    if ingest is None:
        return _unavailable(site, view, 503)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise FhirError(Category.TOO_LARGE, view.t("error.form_too_large"))
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    session = None if view.new_session else view.session_id
    if not valid_csrf(site.services.secret, session, form.get("csrf")):
        return site.pages.error(view, 403, view.t("error.csrf"))
    raw_id = request.path_params["message_id"]
    if not raw_id.isdigit() or len(raw_id) > 18:
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_message"))
    await site.call(ingest.reprocess, int(raw_id))
    return RedirectResponse(f"{APP_PATH}/operator/messages/{raw_id}?reprocessed=1", 303)


def _system_facts(site: Site, with_counts: bool) -> dict[str, Any]:
    repo = site.services.repo
    started = time.perf_counter()
    counts: dict[str, int] = {}
    try:
        # Counting every resource scans the table: only when asked for.
        if with_counts:
            counts = repo.counts_by_type()
        else:
            repo.search(parse_search("Patient", [("_count", "1"), ("_total", "none")]))
        healthy = True
    except FhirError:
        healthy = False
    probe_ms = (time.perf_counter() - started) * 1000
    shipped = migrations_for(repo.dialect)
    pending_fn = getattr(repo, "pending_migrations", None)
    pending: set[int] | None = None
    if healthy and callable(pending_fn):
        try:
            pending = set(pending_fn())
        except FhirError:
            pending = None
    return {
        "healthy": healthy, "probe_ms": probe_ms, "dialect": repo.dialect,
        "version": huitong.__version__, "counts": counts,
        "migrations": [(m.version, m.name, None if pending is None else m.version not in pending)
                       for m in shipped],
    }


async def system_page(site: Site, request: Request, view: View) -> Response:
    with_counts = request.query_params.get("counts") == "1"
    facts = await site.call(_system_facts, site, with_counts)
    services = {name: getattr(site.services, name) is not None
                for name in ("ingest", "identity", "access", "quality", "audit")}
    services["signin"] = site.services.sessions is not None
    return site.pages.render(view, "operator_system.html", services=services,
                             section="operator", subsection="system",
                             now=site.services.clock(), with_counts=with_counts, **facts)

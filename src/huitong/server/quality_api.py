"""The data-quality operator API under ``/api/quality`` (JSON, and reports as CSV/HTML).

    GET /api/quality/rules                          every rule as configured now
    GET /api/quality/config                         the region document in force
    PUT /api/quality/config                         replace it (validated; 400 lists problems)
    GET /api/quality/findings?org=&rule=&severity=&category=&resource=&month=&_count=&_offset=
    GET /api/quality/scores?org=&month=&trend=      scores per institution and category,
                                                    monthly trend, worst rules
    GET /api/quality/report?org=&month=&format=json|csv|html
    GET /api/quality/go-live                        when each institution went live (the
                                                    timeliness rules judge what came after)

Failures are OperationOutcomes with the status of their category (server/errors.py); with
``auth`` (the authorization server) every call needs a platform operator's bearer token.
Months are ``YYYY-MM``; times are microseconds since the epoch.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Category, FhirError, Issue
from huitong.quality.config import QualityConfigError
from huitong.quality.report import render_report as _render
from huitong.quality.report import report_to_json
from huitong.quality.service import QualityService
from huitong.quality.store import FindingQuery
from huitong.server.api_support import api_endpoint
from huitong.server.api_support import json_response as _json

__all__ = ["quality_routes"]

_OPERATOR_ROLES = frozenset({"platform-admin", "system"})
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_MAX_CONFIG_BYTES = 1024 * 1024
_SEVERITIES = frozenset({"reject", "warn"})
_CATEGORIES = frozenset({"conformance", "completeness", "plausibility", "consistency",
                         "timeliness"})  # fmt: skip


def _endpoint(
    work: Callable[[Request], Awaitable[Response]], auth: Any = None
) -> Callable[[Request], Awaitable[Response]]:
    return api_endpoint(work, auth, what=("the data-quality API", "数据质量接口"),
                        errors={QualityConfigError: config_error})


def config_error(err: QualityConfigError) -> FhirError:
    """One OperationOutcome issue per configuration problem, located by its path."""
    return FhirError(Category.INVALID, issues=[
        Issue(f"{p.message_en} / {p.message_zh}", p.path) for p in err.problems
    ])  # fmt: skip


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(Category.INVALID, f"{name} must be a whole number / {name} 必须是整数") \
            from None
    if not low <= value <= high:
        raise FhirError(Category.INVALID, f"{name} must be between {low} and {high} / "
                        f"{name} 应在 {low} 到 {high} 之间")  # fmt: skip
    return value


def _choice(request: Request, name: str, allowed: frozenset[str]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in allowed:
        raise FhirError(Category.INVALID, f"unknown {name} '{value}' (expected one of "
                        f"{', '.join(sorted(allowed))}) / 未知的 {name}")  # fmt: skip
    return value


def _month(request: Request) -> str | None:
    month = request.query_params.get("month") or None
    if month is not None and not _MONTH.match(month):
        raise FhirError(Category.INVALID, "month must be YYYY-MM / month 应为 YYYY-MM 格式")
    return month


async def _json_body(request: Request) -> Any:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_CONFIG_BYTES:
            raise FhirError(Category.TOO_LARGE, "the body exceeds 1 MiB / 请求体超过 1 MiB")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise FhirError(Category.INVALID, "the body is not JSON / 请求体不是 JSON") from None


def quality_routes(
    service: QualityService, auth: Any = None,
    on_export: Callable[[Request, str], None] | None = None,
) -> list[Route]:  # fmt: skip
    """The routes, bound to ``service`` (repository calls run in the thread pool).
    ``on_export(request, detail)`` records a report leaving the platform (the audit log's
    ``export``); it runs before the report is sent, and a failure refuses it."""

    async def rules(request: Request) -> Response:
        ruleset = service.ruleset
        return _json({"region": ruleset.region, "total": len(ruleset.rules),
                      "rules": [r.to_json() for r in ruleset.rules]})  # fmt: skip

    def config_json() -> dict[str, Any]:
        stored = service.config()
        if stored is None:
            return {"version": None, "document": {}, "savedAt": None, "savedBy": None,
                    "note": None}  # fmt: skip
        return {"version": stored.id, "document": stored.document, "savedAt": stored.saved_at,
                "savedBy": stored.saved_by, "note": stored.note}  # fmt: skip

    async def get_config(request: Request) -> Response:
        return _json(await run_in_threadpool(config_json))

    async def put_config(request: Request) -> Response:
        document = await _json_body(request)
        if not isinstance(document, dict):
            raise FhirError(Category.INVALID, "expected a JSON object / 需要 JSON 对象")
        by = request.headers.get("X-Huitong-Operator") or "api"
        note = request.query_params.get("note") or None
        await run_in_threadpool(lambda: service.set_config(document, by=f"api:{by}", note=note))
        return _json(await run_in_threadpool(config_json))

    async def findings(request: Request) -> Response:
        q = request.query_params
        query = FindingQuery(
            organization=q.get("org") or None, rule_id=q.get("rule") or None,
            severity=_choice(request, "severity", _SEVERITIES),
            category=_choice(request, "category", _CATEGORIES),
            resource=q.get("resource") or None, month=_month(request),
            count=_int(request, "_count", 50, 1, 1000),
            offset=_int(request, "_offset", 0, 0, 10**9),
        )  # fmt: skip
        found, total = await run_in_threadpool(service.findings, query)
        return _json({"total": total, "count": query.count, "offset": query.offset,
                      "findings": [f.to_json() for f in found]})  # fmt: skip

    async def scores(request: Request) -> Response:
        org, month = request.query_params.get("org") or None, _month(request)
        trend = _int(request, "trend", 6, 0, 120)
        report = await run_in_threadpool(
            lambda: service.report(organization=org, month=month, trend_months=trend)
        )
        return _json(report_to_json(report))

    async def report(request: Request) -> Response:
        org, month = request.query_params.get("org") or None, _month(request)
        fmt = request.query_params.get("format") or "json"
        built = await run_in_threadpool(
            lambda: service.report(organization=org, month=month)
        )
        try:
            media_type, text = _render(built, fmt)
        except ValueError:
            raise FhirError(Category.INVALID, "format must be json, csv or html / "
                            "format 应为 json、csv 或 html") from None  # fmt: skip
        if on_export is not None:
            detail = f"quality-report {fmt} org={org or '*'} month={month or 'current'}"
            await run_in_threadpool(on_export, request, detail)
        return Response(text.encode("utf-8"), 200, media_type=media_type)

    async def go_live(request: Request) -> Response:
        rows = await run_in_threadpool(service.go_live)
        return _json({"institutions": [
            {"organization": org, "liveSince": at, "liveSinceText": format_instant(at),
             "setBy": how}
            for org, at, how in rows]})  # fmt: skip

    base = "/api/quality"
    return [
        Route(f"{base}/rules", _endpoint(rules, auth), methods=["GET"]),
        Route(f"{base}/config", _endpoint(get_config, auth), methods=["GET"]),
        Route(f"{base}/config", _endpoint(put_config, auth), methods=["PUT"]),
        Route(f"{base}/findings", _endpoint(findings, auth), methods=["GET"]),
        Route(f"{base}/scores", _endpoint(scores, auth), methods=["GET"]),
        Route(f"{base}/report", _endpoint(report, auth), methods=["GET"]),
        Route(f"{base}/go-live", _endpoint(go_live, auth), methods=["GET"]),
    ]

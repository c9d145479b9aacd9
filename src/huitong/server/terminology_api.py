"""The mapping workbench API under ``/api/terminology`` (JSON).

    GET  /api/terminology/unmapped?institution=&system=&include_mapped=&_count=&_offset=
             local codes without a standard mapping, most records affected first, with
             totals per institution
    GET  /api/terminology/unmapped/candidates?system=&code=&target=&institution=&display=
             &limit=&min_confidence=
             standard codes proposed for one local code (fuzzy on Chinese and English
             names, pinyin, synonyms), each with a confidence and its reasons
    POST /api/terminology/mappings      {institution, system, code, target: {system, code},
                                         equivalence?, how?: accepted|corrected, comment?,
                                         display?, retranslate?: bool (default true)}
             write the decision into the institution's (or the region's) ingest ConceptMap;
             later writes translate the code; stored records are re-translated unless
             ``retranslate`` is false (the answer says how many are affected either way)
    POST /api/terminology/retranslate   {institution, system, code, limit?}
             rewrite the queued records of a mapped code through the write path

Failures are OperationOutcomes with the status of their category; with ``auth`` every call
needs a platform operator's bearer token (``api_support.api_endpoint``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from huitong.fhir.errors import Category, FhirError
from huitong.server.api_support import api_endpoint, json_response, read_json
from huitong.terminology.mapping.service import MappingWorkbench

__all__ = ["terminology_routes"]

Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(work: Handler, auth: Any) -> Handler:
    return api_endpoint(work, auth, what=("the terminology workbench API", "术语映射工作台接口"))


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(
            Category.INVALID, f"{name} must be a whole number / {name} 必须是整数"
        ) from None
    if not low <= value <= high:
        raise FhirError(
            Category.INVALID,
            f"{name} must be between {low} and {high} / {name} 应在 {low} 到 {high} 之间",
        )
    return value


def _flag(value: Any, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise FhirError(Category.INVALID, f"{name} must be true or false / {name} 必须是 true 或 false")


def _text(
    body: dict[str, Any], name: str, *, required: bool = True, allow_empty: bool = False
) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (not value and not allow_empty):
        raise FhirError(
            Category.INVALID, f"{name} must be a non-empty string / {name} 必须是非空字符串"
        )
    return value


async def _object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise FhirError(Category.INVALID, "expected a JSON object / 需要 JSON 对象")
    return body


def terminology_routes(workbench: MappingWorkbench, auth: Any = None) -> list[Route]:
    """The routes, bound to ``workbench`` (repository calls run in the thread pool)."""

    async def unmapped(request: Request) -> Response:
        q = request.query_params
        count = _int(request, "_count", 50, 1, 1000)
        offset = _int(request, "_offset", 0, 0, 10**9)
        items = await run_in_threadpool(
            lambda: workbench.queue(
                institution=q.get("institution") or None,
                system=q.get("system"),
                include_mapped=_flag(q.get("include_mapped"), "include_mapped", False),
            )
        )
        per: dict[str, dict[str, int]] = {}
        for item in items:
            totals = per.setdefault(item.institution, {"codes": 0, "records": 0})
            totals["codes"] += 1
            totals["records"] += item.records
        return json_response(
            {
                "total": len(items),
                "count": count,
                "offset": offset,
                "institutions": [
                    {"institution": k, **v}
                    for k, v in sorted(per.items(), key=lambda kv: (-kv[1]["records"], kv[0]))
                ],
                "codes": [i.to_json() for i in items[offset : offset + count]],
            }
        )

    async def candidates(request: Request) -> Response:
        q = request.query_params
        system, code, target = q.get("system"), q.get("code"), q.get("target")
        if system is None or not code or not target:
            raise FhirError(
                Category.INVALID,
                "system, code and target are required / system、code 和 target 为必填项",
            )
        limit = _int(request, "limit", 5, 1, 50)
        floor = _int(request, "min_confidence", 60, 0, 100)
        institution = q.get("institution") or None

        def work() -> dict[str, Any]:
            local = workbench.local_concept(institution, system, code, q.get("display") or None)
            found = workbench.candidates(local, target, limit=limit, min_confidence=floor / 100)
            return {
                "local": {"system": local.system, "code": local.code, "names": local.names()},
                "target": target,
                "candidates": [
                    {
                        "code": c.target_code,
                        "display": c.display,
                        "confidence": c.confidence,
                        "reasons": list(c.reasons),
                    }
                    for c in found
                ],
            }

        return json_response(await run_in_threadpool(work))

    async def mappings(request: Request) -> Response:
        body = await _object(request)
        target = body.get("target")
        if not isinstance(target, dict):
            raise FhirError(
                Category.INVALID,
                "target must be an object {system, code} / target 必须是 {system, code} 对象",
            )
        institution = _text(body, "institution", required=False)
        system = _text(body, "system", allow_empty=True)
        code = _text(body, "code")
        retranslate = _flag(body.get("retranslate"), "retranslate", True)
        assert system is not None and code is not None

        def work() -> dict[str, Any]:
            decided = workbench.decide(
                institution=institution,
                system=system,
                code=code,
                target_system=str(_text(target, "system")),
                target_code=str(_text(target, "code")),
                display=_text(body, "display", required=False),
                equivalence=_text(body, "equivalence", required=False) or "equivalent",
                how=_text(body, "how", required=False) or "accepted",
                comment=_text(body, "comment", required=False),
            )
            if retranslate:
                decided["retranslated"] = workbench.retranslate(
                    institution=institution, system=system, code=code
                )
            return decided

        return json_response(await run_in_threadpool(work), 201)

    async def retranslate(request: Request) -> Response:
        body = await _object(request)
        institution = _text(body, "institution", required=False)
        system = _text(body, "system", allow_empty=True)
        code = _text(body, "code")
        limit = body.get("limit")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise FhirError(
                Category.INVALID, "limit must be a positive whole number / limit 必须是正整数"
            )
        assert system is not None and code is not None
        done = await run_in_threadpool(
            lambda: workbench.retranslate(
                institution=institution, system=system, code=code, limit=limit
            )
        )
        return json_response(done)

    base = "/api/terminology"
    return [
        Route(f"{base}/unmapped", _endpoint(unmapped, auth), methods=["GET"]),
        Route(f"{base}/unmapped/candidates", _endpoint(candidates, auth), methods=["GET"]),
        Route(f"{base}/mappings", _endpoint(mappings, auth), methods=["POST"]),
        Route(f"{base}/retranslate", _endpoint(retranslate, auth), methods=["POST"]),
    ]

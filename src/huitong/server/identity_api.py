"""The identity service's operator API under ``/api/mpi`` (JSON): the review queue and link
management. Every change needs a reason and is kept in the link history.

    GET  /api/mpi/review?status=open&_count=&_offset=   probable/possible matches with evidence
    POST /api/mpi/review/{id}        {"accept": true|false, "reason": "..."}
    POST /api/mpi/link               {"source": "Patient/x", "golden": "g", "reason": "..."}
    POST /api/mpi/unlink             {"source": "Patient/x", "reason": "..."}
    POST /api/mpi/merge              {"retire": "g1", "into": "g2", "reason": "..."}
    POST /api/mpi/certainly-not      {"a": "Patient/x", "b": "Patient/y", "reason": "..."}
    GET  /api/mpi/golden/{id}        the golden record's links and history
    GET  /api/mpi/search?q=&birthDate=&_count=   demographic search (PDQm-style): name in
                                     characters / pinyin / homophone, resident ID, phone,
                                     or system|value of any identifier

With authentication on, only platform operators may call it; the actor recorded in the
history is the caller's user or client id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from huitong.fhir.errors import Category, FhirError
from huitong.mpi.service import IdentityService
from huitong.server.api_support import api_endpoint, json_response, read_json, require_operator

__all__ = ["identity_routes"]

async def _actor(request: Request, auth: Any) -> str:
    """Who the history records: the operator's user or client id."""
    if auth is None:
        return "local-operator"
    principal = await require_operator(request, auth, "identity management", "身份关联管理")
    return str(principal.user_id or principal.client_id)


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise FhirError(Category.INVALID, "expected a JSON object / 需要 JSON 对象")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FhirError(Category.INVALID, f"'{key}' is required / 缺少“{key}”")
    return value.strip()


def identity_routes(service: IdentityService, auth: Any = None) -> list[Route]:
    def endpoint(
        work: Callable[[Request, str], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def with_actor(request: Request) -> Response:
            return await work(request, await _actor(request, auth))

        return api_endpoint(with_actor)

    async def review(request: Request, actor: str) -> Response:
        q = request.query_params
        status = q.get("status", "open")
        if status not in ("open", "linked", "rejected", "superseded"):
            raise FhirError(Category.INVALID, f"unknown status '{status[:20]}' / 未知状态")
        try:
            count, offset = int(q.get("_count", "50")), int(q.get("_offset", "0"))
        except ValueError:
            raise FhirError(Category.INVALID, "_count/_offset must be numbers") from None
        items, total = await run_in_threadpool(
            lambda: service.review_queue(status=status, limit=max(1, min(count, 500)),
                                         offset=max(0, offset)))
        return json_response({"total": total, "items": [i.to_json() for i in items]})

    async def decide(request: Request, actor: str) -> Response:
        raw = request.path_params["id"]
        if not raw.isdigit():
            raise FhirError(Category.NOT_FOUND, "no such review item / 没有该待审核项")
        body = await _body(request)
        accept = body.get("accept")
        if not isinstance(accept, bool):
            raise FhirError(Category.INVALID, "'accept' must be true or false")
        await run_in_threadpool(lambda: service.decide_review(
            int(raw), accept=accept, by=actor, reason=_text(body, "reason")))
        return json_response({"id": int(raw), "status": "linked" if accept else "rejected"})

    async def link(request: Request, actor: str) -> Response:
        body = await _body(request)
        await run_in_threadpool(lambda: service.link(
            _text(body, "source"), _text(body, "golden"), by=actor, reason=_text(body, "reason")))
        return json_response({"source": body["source"], "golden": body["golden"]})

    async def unlink(request: Request, actor: str) -> Response:
        body = await _body(request)
        new = await run_in_threadpool(lambda: service.unlink(
            _text(body, "source"), by=actor, reason=_text(body, "reason")))
        return json_response({"source": body["source"], "golden": new})

    async def merge(request: Request, actor: str) -> Response:
        body = await _body(request)
        await run_in_threadpool(lambda: service.merge(
            _text(body, "retire"), _text(body, "into"), by=actor, reason=_text(body, "reason")))
        return json_response({"golden": body["into"], "retired": body["retire"]})

    async def not_same(request: Request, actor: str) -> Response:
        body = await _body(request)
        await run_in_threadpool(lambda: service.mark_certainly_not(
            _text(body, "a"), _text(body, "b"), by=actor, reason=_text(body, "reason")))
        return json_response({"a": body["a"], "b": body["b"], "grade": "certainly-not"})

    async def golden(request: Request, actor: str) -> Response:
        gid = request.path_params["id"]
        links, history = await run_in_threadpool(
            lambda: (service.links(gid), service.history(gid)))
        if not links:
            raise FhirError(Category.NOT_FOUND, "not a golden record / 不是主索引记录")
        return json_response({"golden": f"Patient/{gid}", "links": links, "history": history})

    async def search(request: Request, actor: str) -> Response:
        q = request.query_params
        text = q.get("q", "").strip()
        if not text:
            raise FhirError(Category.INVALID, "'q' is required / 缺少查询内容“q”")
        if len(text) > 100:
            raise FhirError(Category.INVALID, "'q' is too long / 查询内容过长")
        try:
            count = max(1, min(int(q.get("_count", "20")), 100))
        except ValueError:
            raise FhirError(Category.INVALID,
                            "_count must be a number / _count 必须是数字") from None
        birth = q.get("birthDate") or None
        items = await run_in_threadpool(
            lambda: service.search(text, birth_date=birth, limit=count))
        return json_response({"total": len(items), "items": items})

    return [
        Route("/api/mpi/search", endpoint(search), methods=["GET"]),
        Route("/api/mpi/review", endpoint(review), methods=["GET"]),
        Route("/api/mpi/review/{id}", endpoint(decide), methods=["POST"]),
        Route("/api/mpi/link", endpoint(link), methods=["POST"]),
        Route("/api/mpi/unlink", endpoint(unlink), methods=["POST"]),
        Route("/api/mpi/merge", endpoint(merge), methods=["POST"]),
        Route("/api/mpi/certainly-not", endpoint(not_same), methods=["POST"]),
        Route("/api/mpi/golden/{id}", endpoint(golden), methods=["GET"]),
    ]

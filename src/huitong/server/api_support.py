"""What Huitong's JSON APIs (``/api/ingest``, ``/api/mpi``, ``/api/quality``) share: JSON
responses, failures as OperationOutcomes with the status of their category (through
:mod:`huitong.server.errors`, the one place that mapping lives), bounded bodies, and the
operator check when authentication is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from huitong.fhir.errors import Category, FhirError
from huitong.server.errors import error_response, internal_error_response

__all__ = [
    "OPERATOR_ROLES",
    "api_endpoint",
    "error_json",
    "json_response",
    "read_body",
    "read_json",
    "require_operator",
]

# Who may operate the platform's components when authentication is on.
OPERATOR_ROLES = frozenset({"platform-admin", "system"})

Work = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def error_json(err: FhirError) -> Response:
    resp = error_response(err)
    return Response(orjson.dumps(resp.body), resp.status, resp.headers,
                    media_type="application/fhir+json")


async def require_operator(request: Request, auth: Any, what_en: str, what_zh: str) -> Any:
    """The caller's principal, who must be a platform operator (or a system client);
    UNAUTHORIZED without a token, FORBIDDEN for other roles."""
    from huitong.server.authn import authenticate_request

    principal = await run_in_threadpool(authenticate_request, request, auth)
    if principal is None:
        raise FhirError(Category.UNAUTHORIZED,
                        "This API requires an OAuth 2 bearer token / 需要提供 OAuth 2 访问令牌")
    if principal.role.value not in OPERATOR_ROLES:
        raise FhirError(
            Category.FORBIDDEN,
            f"Only platform operators may use {what_en} / 仅平台运维人员可使用{what_zh}",
        )
    return principal


def api_endpoint(
    work: Work,
    auth: Any = None,
    *,
    what: tuple[str, str] = ("this API", "此接口"),
    errors: Mapping[type[Exception], Callable[[Any], FhirError]] | None = None,
) -> Work:
    """Wrap a handler: the operator check (when ``auth`` is given), failures as
    OperationOutcomes (``errors`` turns a component's own exception types into FhirError),
    and any other exception as a 500 logged without its message (it could hold patient data).
    """

    async def run(request: Request) -> Response:
        try:
            if auth is not None:
                request.state.principal = await require_operator(request, auth, *what)
            return await work(request)
        except FhirError as err:
            return error_json(err)
        except Exception as exc:
            for kind, convert in (errors or {}).items():
                if isinstance(exc, kind):
                    return error_json(convert(exc))
            resp = internal_error_response(exc, where=f"{request.method} {request.url.path}")
            return Response(orjson.dumps(resp.body), resp.status,
                            media_type="application/fhir+json")

    return run


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (TOO_LARGE) once it passes ``limit`` bytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError(Category.TOO_LARGE, f"the body exceeds {limit} bytes / 请求体过大")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int = 1024 * 1024) -> Any:
    try:
        return orjson.loads(await read_body(request, limit))
    except orjson.JSONDecodeError:
        raise FhirError(Category.INVALID, "the body is not JSON / 请求体不是 JSON") from None

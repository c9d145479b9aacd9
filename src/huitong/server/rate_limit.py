"""Rate limiting as ASGI middleware: per client, per route group, token buckets (issue 5).

A request is counted against the bucket of (route group, client). The client is the
``client_id`` of its bearer token when the token's signature verifies (the result is
cached per token, so a client's requests cost one signature check per token, not one per
request; a forged token cannot spend another client's budget), else the remote address.
Route groups: the patient-data interface ``/fhir`` and the consent APIs get
``HUITONG_RATE_LIMIT`` (100 per minute by default); redeeming a share code gets a tight
bucket of its own (:data:`REDEEM_LIMIT`), so guessing codes is hopeless. Beyond the limit the
answer is 429 with ``Retry-After`` and an OperationOutcome (code ``throttled``), in both
languages. With ``HUITONG_REDIS_URL`` set the buckets live in Redis and every worker shares
them; when Redis cannot be reached the worker falls back to its own buckets (and says so in
the log) rather than refuse care.

Only installed with authentication on: with ``HUITONG_AUTH=off`` the server is a loopback
development server (demo, benchmarks), where there are no clients to tell apart.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from huitong.access.keys import SignatureInvalid
from huitong.access.oauth_server import ACCESS_TOKEN_TYP
from huitong.access.rate_limit import (
    Limit,
    LocalBuckets,
    RedisBuckets,
    Verdict,
    parse_limit,
    retry_after_header,
)
from huitong.fhir.errors import Category, FhirError
from huitong.server.api_support import error_json

__all__ = [
    "REDEEM_LIMIT",
    "RateLimitMiddleware",
    "RouteGroup",
    "default_groups",
    "rate_limit_middleware",
]

log = logging.getLogger("huitong.server.rate_limit")

REDEEM_LIMIT = Limit(10, 60.0)
_CACHE_MAX = 10_000
_REDIS_WARN_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class RouteGroup:
    """Requests whose path is one of ``paths`` or below one of ``prefixes``."""

    name: str
    limit: Limit
    prefixes: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        return path in self.paths or any(
            path == p or path.startswith(p + "/") for p in self.prefixes
        )


def default_groups(limit: Limit) -> list[RouteGroup]:
    """The groups the server limits (first match wins)."""
    return [
        RouteGroup("redeem", REDEEM_LIMIT, paths=("/api/share-codes/redeem",)),
        RouteGroup("fhir", limit, prefixes=("/fhir",)),
        RouteGroup("consent", limit, prefixes=("/api/consents", "/api/consent",
                                               "/api/share-codes", "/api/break-glass")),
    ]  # fmt: skip


def rate_limit_middleware(settings: Any, auth: Any) -> list[Middleware]:
    """The middleware for ``settings`` (``HUITONG_RATE_LIMIT``, ``HUITONG_REDIS_URL``):
    none with authentication off or a limit of 0. ValueError for an unreadable limit."""
    limit = parse_limit(str(settings.rate_limit))
    if settings.auth == "off" or limit is None:
        return []
    return [Middleware(RateLimitMiddleware, groups=default_groups(limit), auth=auth,
                       redis_url=settings.redis_url)]  # fmt: skip


class RateLimitMiddleware:
    """See the module docstring. ``auth`` is the :class:`~huitong.access.AuthService` whose
    keys verify tokens; ``redis_url`` empty for in-process buckets; ``local`` may be given
    (tests inject a clock)."""

    def __init__(
        self, app: ASGIApp, *, groups: Sequence[RouteGroup], auth: Any,
        redis_url: str = "", local: LocalBuckets | None = None,
    ) -> None:  # fmt: skip
        self.app = app
        self.groups = tuple(groups)
        self.auth = auth
        self.local = local or LocalBuckets()
        self.shared = RedisBuckets(redis_url) if redis_url else None
        self._clients: dict[str, str | None] = {}
        self._warned_at = float("-inf")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        group = next((g for g in self.groups if g.matches(path)), None)
        if group is None:
            await self.app(scope, receive, send)
            return
        client = await self._client(scope)
        verdict = await self._take(f"{group.name}:{client}", group.limit)
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        n, per = group.limit.requests, _per(group.limit.seconds)
        wait = retry_after_header(verdict.retry_after)
        resp = error_json(FhirError(
            Category.TOO_MANY_REQUESTS,
            f"Too many requests: at most {n} per {per[0]} for each client; try again in "
            f"{wait} s / 请求过于频繁：每个客户端每{per[1]}最多 {n} 次，请 {wait} 秒后重试",
        ))  # fmt: skip
        resp.headers["Retry-After"] = wait
        await resp(scope, receive, send)

    async def _take(self, key: str, limit: Limit) -> Verdict:
        if self.shared is not None:
            try:
                return await self.shared.take(key, limit)
            except Exception as exc:  # Redis away: keep serving, each worker on its own
                now = time.monotonic()
                if now - self._warned_at >= _REDIS_WARN_EVERY_S:
                    self._warned_at = now
                    log.warning("rate limit: Redis unavailable (%s); using in-process "
                                "buckets", type(exc).__name__)  # fmt: skip
        return self.local.take(key, limit)

    async def _client(self, scope: Scope) -> str:
        token = _bearer(scope)
        if token is not None and self.auth is not None:
            digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
            if digest in self._clients:
                client_id = self._clients[digest]
            else:
                client_id = await run_in_threadpool(self._verified_client, token)
                if len(self._clients) >= _CACHE_MAX:
                    self._clients.clear()  # access tokens are short-lived: most are stale
                self._clients[digest] = client_id
            if client_id:
                return f"client:{client_id}"
        peer = scope.get("client")
        return f"addr:{peer[0] if peer else 'unknown'}"

    def _verified_client(self, token: str) -> str | None:
        try:
            claims, _ = self.auth.keys.verify(token, typ=ACCESS_TOKEN_TYP)
        except SignatureInvalid:
            return None
        client_id = claims.get("client_id")
        return client_id if isinstance(client_id, str) and client_id else None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def _per(seconds: float) -> tuple[str, str]:
    if seconds == 1:
        return "second", "秒"
    if seconds == 60:
        return "minute", "分钟"
    if seconds == 3600:
        return "hour", "小时"
    return f"{seconds:g} seconds", f"{seconds:g} 秒"

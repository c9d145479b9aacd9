"""Reads by id answered on the event loop: ``GET /fhir/{type}/{id}`` and
``GET /fhir/{type}/{id}/_history/{vid}`` — https://hl7.org/fhir/R4/http.html#read.

Pure ASGI middleware in front of the FHIR routes. A plain read (no query, no body, no
conditional header, an ``Accept`` the server can satisfy) is answered here: the row comes
from :class:`~huitong.store.pg_reads.AsyncReads` without a worker thread, the stored JSON
goes out as it is (it already carries ``id`` and ``meta``), and with the audit log on the
entry is appended by a group commit (:class:`AuditAppends`) *before* the response starts —
an entry that cannot be stored fails the request, exactly as on the general path. On
PostgreSQL a group is inserted with its tree positions in the same transaction, on the
event loop (:mod:`huitong.audit.pg_appends`): no worker thread, no later sequencing.

Everything else passes through to the general path (:func:`huitong.server.app._handle`):
authentication on (the principal's view decides what a read may see), ``_summary``,
``_elements``, ``_format``, ``_pretty``, ``If-None-Match``, HEAD, SQLite. Responses are the
same bytes and headers either way; ``tests/server/test_fast_read.py`` compares them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from huitong.audit.entry import AuditEntry
from huitong.audit.recording import AuditRecorder
from huitong.audit.service import AuditService
from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.server.errors import error_response, internal_error_response
from huitong.server.negotiation import FHIR_JSON, check_accept
from huitong.server.request import FhirRequest
from huitong.server.response import FhirResponse, etag, http_date
from huitong.server.routing import match
from huitong.store.pg_reads import AsyncReads
from huitong.store.repository import StoredResource

__all__ = ["AuditAppends", "FastReads"]

log = logging.getLogger("huitong.server")

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII).fullmatch
_VID = re.compile(r"[0-9]{1,18}", re.ASCII).fullmatch
# Request headers that change what a read answers: such requests take the general path.
_GENERAL = frozenset({b"if-none-match", b"if-modified-since", b"transfer-encoding",
                      b"authorization"})  # fmt: skip
_CONTENT_TYPE = FHIR_JSON.encode()

# FhirResponse -> an ASGI response, rendered as the general path renders it.
Render = Callable[[FhirResponse], Any]


class AuditAppends:
    """Group commit of audit entries on the event loop. Entries arriving while a commit
    runs wait and are written together by the next one, one transaction for the group —
    on PostgreSQL by :meth:`AuditService.group_appender` on the loop itself (entries
    sequenced as they are inserted), otherwise by :meth:`AuditService.record_many` in a
    worker thread (the repository is synchronous); each caller resumes only once its own
    entry is committed, and every caller of a failed group gets the error."""

    def __init__(self, service: AuditService, executor: Executor) -> None:
        self.service = service
        self.executor = executor
        # PostgreSQL: each group inserted *and* sequenced on the event loop, in one
        # transaction (audit/pg_appends.py); other engines: record_many in a worker thread.
        self._pg = service.group_appender()
        self._queue: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """At server shutdown: the appender's own connection goes (on PostgreSQL)."""
        if self._pg is not None:
            await self._pg.close()

    async def append(self, entry: AuditEntry) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((entry, done))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain(loop))
        await done

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._queue:
                group, self._queue = self._queue, []
                try:
                    entries = [e for e, _ in group]
                    if self._pg is not None:
                        await self._pg.append(entries)
                    else:
                        await loop.run_in_executor(self.executor, self._commit, entries)
                except BaseException as exc:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for _, done in group:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._running = False

    def _commit(self, entries: Sequence[AuditEntry]) -> None:
        with self.service.repo.transaction() as tx:
            self.service.record_many(tx, entries)


class FastReads:
    """See the module docstring. ``reads`` is the repository's event-loop reader;
    ``audit``/``appends`` are set when the audit log is on; ``render`` turns an error
    :class:`FhirResponse` into an ASGI response the way the general path does."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        reads: AsyncReads,
        render: Render,
        audit: AuditRecorder | None = None,
        appends: AuditAppends | None = None,
        prefix: str = "/fhir/",
    ) -> None:
        self.app = app
        self.reads = reads
        self.render = render
        self.audit = audit
        self.appends = appends
        self.prefix = prefix
        self.types = resource_types()
        # The routing table's own interactions, so audit entries name them as run() does.
        self.read_interaction = match("GET", "Patient/x")[0]
        self.vread_interaction = match("GET", "Patient/x/_history/1")[0]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope.get("query_string")
            and scope["path"].startswith(self.prefix)
        ):
            target = self._target(scope["path"][len(self.prefix):])
            if target is not None and _plain(scope["headers"]):
                await self._read(scope, receive, send, *target)
                return
        await self.app(scope, receive, send)

    def _target(self, rest: str) -> tuple[str, str, str | None] | None:
        parts = rest.split("/")
        if len(parts) == 2:
            rtype, rid = parts
            vid = None
        elif len(parts) == 4 and parts[2] == "_history":
            rtype, rid, _, vid = parts
            if not _VID(vid):
                return None
        else:
            return None
        if rtype not in self.types or not _ID(rid):
            return None  # the general path says what is wrong with it
        return rtype, rid, vid

    async def _read(
        self, scope: Scope, receive: Receive, send: Send, rtype: str, rid: str, vid: str | None
    ) -> None:
        try:
            if vid is None:
                stored = await self.reads.read(rtype, rid)
            else:
                stored = await self.reads.vread(rtype, rid, int(vid))
        except FhirError as err:
            await self._audited_failure(scope, rtype, rid, vid, err.category)
            await self.render(error_response(err))(scope, receive, send)
            return
        except Exception as exc:  # as the general path: a 500 outcome, logged without data
            resp = internal_error_response(exc, where=f"GET /{scope['path'][len(self.prefix):]}")
            await self.render(resp)(scope, receive, send)
            return
        if self.audit is not None and self.appends is not None:
            try:
                entry = self.audit.entry_for(
                    self._interaction(vid), _request(rtype, rid, vid), None,
                    _client(scope), read=(stored,),
                )  # fmt: skip
                if entry is not None:
                    await self.appends.append(entry)
            except FhirError as err:  # not stored: the data does not leave
                await self.render(error_response(err))(scope, receive, send)
                return
            except Exception as exc:
                resp = internal_error_response(exc, where=f"GET /{rtype} (audit)")
                await self.render(resp)(scope, receive, send)
                return
        await _send_stored(send, stored)

    def _interaction(self, vid: str | None) -> Any:
        return self.read_interaction if vid is None else self.vread_interaction

    async def _audited_failure(
        self, scope: Scope, rtype: str, rid: str, vid: str | None, category: Category
    ) -> None:
        if self.audit is None or self.appends is None:
            return
        try:
            entry = self.audit.entry_for(
                self._interaction(vid), _request(rtype, rid, vid), None, _client(scope),
                failure=category,
            )  # fmt: skip
            if entry is not None:
                await self.appends.append(entry)
        except Exception:  # the request is failing anyway; its own error goes back
            log.warning("audit: could not record a failed read of %s", rtype)


def _plain(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """No body, no conditional header, and an Accept the server satisfies with JSON."""
    for name, value in headers:
        if name in _GENERAL:
            return False
        if name == b"content-length" and value.strip() not in (b"", b"0"):
            return False
        if name == b"accept":
            try:
                check_accept(None, value.decode("latin-1"))
            except FhirError:
                return False  # 406 comes from the general path
    return True


def _request(rtype: str, rid: str, vid: str | None) -> FhirRequest:
    path_params = {"type": rtype, "id": rid}
    path = f"{rtype}/{rid}"
    if vid is not None:
        path_params["vid"] = vid
        path += f"/_history/{vid}"
    return FhirRequest("GET", path, path_params=path_params)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def _send_stored(send: Send, stored: StoredResource) -> None:
    body = stored.json
    # The general path's headers, in its order (starlette.responses.Response).
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"etag", etag(stored.version_id).encode()),
            (b"last-modified", http_date(stored.last_updated).encode()),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", _CONTENT_TYPE),
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})

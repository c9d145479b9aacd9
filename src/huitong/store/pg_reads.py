"""Reads by id on the event loop, for PostgreSQL: ``GET /fhir/{type}/{id}`` without a thread.

The repository is synchronous, so the server runs its calls in worker threads. For the
commonest request of all, a read by id, that hop (handing the call to a thread and the
answer back through the event loop) and psycopg's general cursor machinery cost several
times the query itself (measured: ~0.5 ms of CPU per read against ~0.05 ms for the query
through libpq). :class:`AsyncReads` answers those reads on the event loop instead: a few
connections of its own, libpq's non-blocking API, one prepared statement per connection,
the stored JSON text returned as it is (it already carries ``id`` and ``meta``).

Only plain reads (no access restriction) come here; everything else — and every read when
authentication is on — goes through the repository as before. Failure contract as
:meth:`~huitong.store.repository.Repository.read`: NOT_FOUND, GONE, and UNAVAILABLE when the
database cannot be reached or no connection frees up within ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import psycopg
from psycopg import pq

from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import StoredResource

__all__ = ["AsyncReads", "LoopConnection", "check_result"]

log = logging.getLogger("huitong.store")

_READ = b"huitong_read_by_id"
_READ_SQL = (
    b"SELECT version, last_updated, deleted, method, content::text FROM resources "
    b"WHERE res_type = $1 AND res_id = $2"
)
_VREAD = b"huitong_vread"
_VREAD_SQL = (
    b"SELECT version, last_updated, deleted, method, content::text FROM resources "
    b"WHERE res_type = $1 AND res_id = $2 AND version = $3 UNION ALL "
    b"SELECT version, last_updated, deleted, method, content::text FROM resource_history "
    b"WHERE res_type = $1 AND res_id = $2 AND version = $3 LIMIT 1"
)


class LoopConnection:
    """One connection in non-blocking mode, driven by the event loop. Its socket stays
    registered with the loop for the connection's life (one ``epoll_ctl`` at connect, none
    per query); the callback consumes input and completes the query waiting on it. Also the
    base of the audit log's pipelined appender (audit/pg_appends.py), which overrides how a
    batch's results end."""

    __slots__ = ("broken", "conn", "fd", "loop", "pg", "results", "waiter")

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop, *,
        pipeline: bool = False,
    ) -> None:
        self.conn = conn  # kept: it owns the libpq connection
        self.pg = conn.pgconn
        self.pg.nonblocking = 1
        if pipeline:
            self.pg.enter_pipeline_mode()
        self.loop = loop
        self.fd = self.pg.socket
        self.waiter: asyncio.Future[list[pq.abc.PGresult]] | None = None
        self.results: list[pq.abc.PGresult] = []
        self.broken = False
        loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        pg = self.pg
        try:
            pg.consume_input()
            self._collect()
        except psycopg.OperationalError as exc:
            self._fail(exc)
            return
        if pg.status != pq.ConnStatus.OK:
            self._fail(psycopg.OperationalError("connection lost"))

    def _collect(self) -> None:
        """Take the results that have arrived; complete the waiter at the query's end."""
        pg = self.pg
        while self.waiter is not None and not pg.is_busy():
            res = pg.get_result()
            if res is None:  # the query's results are complete
                self._complete()
                return
            self.results.append(res)

    def _complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        results, self.results = self.results, []
        if waiter is not None and not waiter.done():
            waiter.set_result(results)

    def _fail(self, exc: BaseException) -> None:
        self.broken = True
        # A closed socket stays readable: unregister it, or the loop would spin on it.
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            self.loop.remove_reader(self.fd)
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def run(self, name: bytes, params: list[bytes]) -> list[pq.abc.PGresult]:
        pg = self.pg
        self.waiter = self.loop.create_future()
        try:
            pg.send_query_prepared(name, params)
            while pg.flush():  # a few dozen bytes: flushed at once unless the socket is full
                await asyncio.sleep(0)
        except psycopg.OperationalError as exc:
            self._fail(exc)
        return await self.waiter

    async def prepare(self, name: bytes, sql: bytes) -> None:
        self.waiter = self.loop.create_future()
        self.pg.send_prepare(name, sql)
        while self.pg.flush():
            await asyncio.sleep(0)
        for res in await self.waiter:
            check_result(res)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError, RuntimeError):  # loop closed
            self.loop.remove_reader(self.fd)
        self.pg.finish()


def check_result(res: pq.abc.PGresult, failed: str = "query failed") -> None:
    """Raise the server's error of a failed result (``failed`` when it gave no message)."""
    if res.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        msg = (res.error_message or b"").decode("utf-8", "replace")
        raise psycopg.DatabaseError(msg.strip() or failed)


class AsyncReads:
    """Up to ``size`` connections to ``url`` for reads by id, opened on first use in the
    event loop that uses them (each server worker process has its own)."""

    def __init__(self, url: str, *, size: int = 4, timeout: float = 5.0) -> None:
        self.url = url
        self.size = size
        self.timeout = timeout
        self._idle: collections.deque[LoopConnection] = collections.deque()
        self._waiting: collections.deque[asyncio.Future[LoopConnection]] = collections.deque()
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def read(self, resource_type: str, id: str) -> StoredResource:
        rows = await self._query(_READ, [resource_type.encode(), id.encode()])
        if not rows:
            raise FhirError(Category.NOT_FOUND, f"{resource_type}/{id} is not known")
        stored = _stored(resource_type, id, rows[0])
        if stored.deleted:
            raise FhirError(Category.GONE, f"{resource_type}/{id} has been deleted")
        return stored

    async def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource:
        rows = await self._query(
            _VREAD, [resource_type.encode(), id.encode(), str(version_id).encode()]
        )
        if not rows:
            raise FhirError(
                Category.NOT_FOUND, f"{resource_type}/{id} has no version {version_id}"
            )
        stored = _stored(resource_type, id, rows[0])
        if stored.deleted:
            raise FhirError(
                Category.GONE, f"version {version_id} of {resource_type}/{id} is a delete"
            )
        return stored

    async def _query(self, name: bytes, params: list[bytes]) -> list[tuple[bytes | None, ...]]:
        conn = await self._acquire()
        try:
            results = await conn.run(name, params)
            rows: list[tuple[bytes | None, ...]] = []
            for res in results:
                # Anything but rows (the schema changed under the prepared statement, the
                # server is shutting down…): this connection is dropped, a new one prepares
                # the statement again.
                check_result(res)
                for r in range(res.ntuples):
                    rows.append(tuple(res.get_value(r, c) for c in range(res.nfields)))
            return rows
        except psycopg.Error as exc:
            conn.broken = True
            log.warning("read by id: %s", type(exc).__name__)
            raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc
        finally:
            self._release(conn)

    async def _acquire(self) -> LoopConnection:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (tests run several): start afresh
            self._reset(loop)
        deadline = loop.time() + self.timeout
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.broken:
                    return conn
                # the server closed it while idle (restart, idle timeout): drop it
                conn.close()
                self._open -= 1
            if self._open < self.size:
                self._open += 1
                try:
                    return await asyncio.wait_for(self._connect(loop), deadline - loop.time())
                except BaseException as exc:
                    self._open -= 1
                    self._wake_one()
                    if isinstance(exc, (psycopg.Error, OSError, TimeoutError)):
                        raise FhirError(Category.UNAVAILABLE, "database unavailable") from exc
                    raise
            waiter: asyncio.Future[LoopConnection] = loop.create_future()
            self._waiting.append(waiter)
            try:
                return await asyncio.wait_for(waiter, max(deadline - loop.time(), 0))
            except _Retry:
                continue  # a slot came free: open a connection in it
            except TimeoutError:
                raise FhirError(
                    Category.UNAVAILABLE, "database unavailable: no connection came free"
                ) from None
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> LoopConnection:
        raw = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name="huitong",
            # Reads by primary key: the generic plan is the right one, so let the server
            # keep it (the repository's own sessions force per-value plans for searches).
            options="-c jit=off",
        )  # fmt: skip
        conn = LoopConnection(raw, loop)
        try:
            await conn.prepare(_READ, _READ_SQL)
            await conn.prepare(_VREAD, _VREAD_SQL)
        except BaseException:
            conn.close()
            raise
        return conn

    def _release(self, conn: LoopConnection) -> None:
        if conn.broken or conn.pg.status != pq.ConnStatus.OK:
            conn.close()
            self._open -= 1
            self._wake_one()
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _wake_one(self) -> None:
        """A connection slot freed: the first waiter opens a connection of its own."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(_Retry())
                return

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        for conn in self._idle:
            with contextlib.suppress(Exception):  # the old loop is gone; the socket matters
                conn.pg.finish()
        self._idle.clear()
        self._waiting.clear()
        self._open = 0
        self._loop = loop

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self._open = 0


class _Retry(Exception):
    """Raised in a waiter when a slot (not a connection) came free."""


def _stored(resource_type: str, id: str, row: tuple[bytes | None, ...]) -> StoredResource:
    version, last_updated, deleted, method, content = row
    return StoredResource(
        resource_type, id, int(version or b"0"), int(last_updated or b"0"), deleted == b"t",
        (method or b"").decode(), content or b"",
    )  # fmt: skip

"""The embedded engine: SQLite in WAL mode.

One write connection, serialised by a lock (SQLite allows one writer; queuing in Python is
cheaper than retrying on SQLITE_BUSY), and one read connection per thread, which WAL lets
run beside the writer. Content is stored as JSON text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import Category, FhirError
from huitong.store._base import BaseRepository, EngineOps
from huitong.store.migrate import pending

__all__ = ["SQLiteRepository"]


class SQLiteOps(EngineOps):
    dialect = "sqlite"
    ph = "?"

    def allocate_rids(self, cur: Any, n: int, after: int) -> list[int]:
        # The writer lock is held for the whole transaction, so max(rid) cannot move under us;
        # rows still in this transaction's buffer are covered by `after`.
        cur.execute("SELECT COALESCE(MAX(rid), 0) FROM resources")
        start = max(int(cur.fetchone()[0]), after) + 1
        return list(range(start, start + n))

    def bulk_insert(self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns))
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class SQLiteRepository(BaseRepository):
    """A repository in one SQLite file (``sqlite:///path``; ``sqlite:///:memory:`` for a
    throwaway database shared by this process)."""

    dialect = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        upgrade: bool = True,
        clock: Clock | None = None,
        new_id: IdFactory | None = None,
        local_base: str | None = None,
    ) -> None:
        super().__init__(clock=clock, new_id=new_id, local_base=local_base)
        self.ops = SQLiteOps()
        self._memory = path in (":memory:", "")
        if self._memory:
            # A named shared-cache memory database, so readers see the writer's data.
            self._uri = f"file:huitong-{id(self)}?mode=memory&cache=shared"
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._uri = f"file:{Path(path).resolve()}"
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._writer = self._connect()
        self._all: list[sqlite3.Connection] = [self._writer]
        if not self._memory:
            self._writer.execute("PRAGMA journal_mode = WAL")
        self.applied_migrations: list[int] = []
        if upgrade:
            self.applied_migrations = self.upgrade()
        elif self.pending_migrations():
            raise FhirError(
                Category.UNAVAILABLE,
                "database schema is out of date: run `huitong db upgrade` / "
                "数据库结构版本过旧：请运行 `huitong db upgrade`",
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
        )
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    # -- migrations ------------------------------------------------------------
    def _applied(self) -> set[int]:
        self._writer.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        return {r[0] for r in self._writer.execute("SELECT version FROM schema_migrations")}

    def pending_migrations(self) -> list[int]:
        with self._write_lock:
            return [m.version for m in pending("sqlite", self._applied())]

    def upgrade(self) -> list[int]:
        """Apply pending migrations; returns the versions applied."""
        done = []
        with self._write_lock:
            for m in pending("sqlite", self._applied()):
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    for statement in m.sql.split(";\n"):
                        if statement.strip():
                            self._writer.execute(statement)
                    self._writer.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        (m.version, m.name),
                    )
                    self._writer.execute("COMMIT")
                except BaseException:
                    self._writer.execute("ROLLBACK")
                    raise
                done.append(m.version)
        return done

    # -- connections -----------------------------------------------------------
    @contextmanager
    def _write_cursor(self) -> Iterator[Any]:
        with self._write_lock:
            cur = self._writer.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    @contextmanager
    def _read_cursor(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._all.append(conn)
        cur = conn.cursor()
        # One snapshot for the whole read (count and page agree).
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("COMMIT")
            cur.close()

    def close(self) -> None:
        for conn in self._all:
            with suppress(sqlite3.Error):
                conn.close()
        self._all.clear()

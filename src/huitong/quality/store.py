"""Quality findings, check counters and the region's configuration in the database.

Writes take the open :class:`~huitong.store.repository.Transaction` of the resource being
written, so a finding and its counters commit with the resource or not at all; reads go
through ``Repository.query``. Tables are created by schema migration 6 (``0006_quality.sql``);
the statements are the same on SQLite and PostgreSQL (``?`` placeholders, ``ON CONFLICT``).
Each write is one statement however many rules applied, because every component statement
flushes the transaction's buffered resource rows first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from huitong.quality.model import Category, Finding
from huitong.quality.scores import CheckCount
from huitong.store.repository import Repository, Transaction

__all__ = [
    "FindingQuery",
    "StoredConfig",
    "StoredFinding",
    "append_count_delta_rows",
    "append_count_deltas",
    "count_rows",
    "fold_count_deltas",
    "go_live_rows",
    "insert_finding_rows",
    "latest_config",
    "latest_config_id",
    "record_findings",
    "record_go_live",
    "save_config",
    "search_findings",
]

_CATEGORIES = {c.value: c for c in Category}


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as kept: the failed check, the resource version it was found on, the
    sending institution (``organization``), ``meta.source`` of the resource (``source``)
    and the month it counts in."""

    id: int
    resource: str
    version: int
    rule_id: str
    category: str
    severity: str
    expression: str | None
    message_en: str
    message_zh: str
    source: str | None
    organization: str
    month: str
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "resource": self.resource, "version": self.version,
            "rule": self.rule_id, "category": self.category, "severity": self.severity,
            "expression": self.expression,
            "message": {"en": self.message_en, "zh": self.message_zh},
            "source": self.source, "organization": self.organization, "month": self.month,
            "createdAt": self.created_at,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FindingQuery:
    """Filters for :func:`search_findings` (None: any). ``resource`` is ``Type/id``."""

    organization: str | None = None
    rule_id: str | None = None
    severity: str | None = None
    category: str | None = None
    resource: str | None = None
    month: str | None = None
    count: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class StoredConfig:
    id: int
    document: dict[str, Any]
    saved_at: int
    saved_by: str
    note: str | None


def record_findings(
    tx: Transaction,
    findings: Sequence[Finding],
    *,
    resource: str,
    version: int,
    source: str | None,
    organization: str,
    month: str,
    created_at: int,
) -> None:
    """Insert the findings of one resource version (one statement)."""
    if not findings:
        return
    rows: list[Any] = []
    for f in findings:
        rows += [resource, version, f.rule_id, f.category.value, f.severity.value,
                 f.expression, f.message_en, f.message_zh, source, organization, month,
                 created_at]  # fmt: skip
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(findings))
    tx.execute(
        "INSERT INTO quality_findings (resource, version, rule_id, category, severity, "
        "expression, message_en, message_zh, source, organization, month, created_at) "
        f"VALUES {values}",
        rows,
    )


_FINDING_COLUMNS = (
    "resource, version, rule_id, category, severity, expression, message_en, message_zh, "
    "source, organization, month, created_at"
)
# On PostgreSQL the rows travel as one JSON array parameter, unpacked by the server: binding
# twelve parameters a row cost the client about 25 times more CPU (measured: 68 against
# 2.6 µs a row). SQLite runs in the process, where parsing the JSON costs more than binding
# (23 against 12 µs a row), so it gets the parameters.
_INSERT_FROM_JSON = (
    f"INSERT INTO quality_findings ({_FINDING_COLUMNS}) SELECT r->>0, (r->>1)::integer, "
    "r->>2, r->>3, r->>4, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10, (r->>11)::bigint "
    "FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS t(r, i) ORDER BY i"
)
_ROWS_PER_STATEMENT = 400  # 12 parameters a row: well under SQLite's limit


def insert_finding_rows(tx: Transaction, rows: Sequence[tuple[Any, ...]], dialect: str) -> None:
    """Insert finding rows (resource, version, rule_id, category, severity, expression,
    message_en, message_zh, source, organization, month, created_at): one statement on
    PostgreSQL, one per 400 rows on SQLite.

    On PostgreSQL the statement is deferred (``Transaction.execute_later``): nobody reads
    its answer, and the write path calls this from a commit hook, right before the store's
    last flush, which then carries it in its own pipeline instead of a round trip of its own
    (a failure still fails the transaction, at that flush)."""
    if not rows:
        return
    if dialect == "postgresql":
        tx.execute_later(_INSERT_FROM_JSON, (orjson.dumps(rows).decode(),))
        return
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        tx.execute(
            f"INSERT INTO quality_findings ({_FINDING_COLUMNS}) VALUES {values}",
            [v for row in chunk for v in row],
        )


_UPSERT_COUNTS = (
    " ON CONFLICT (organization, month, rule_id) DO UPDATE SET "
    "applicable = quality_counts.applicable + excluded.applicable, "
    "failed = quality_counts.failed + excluded.failed"
)


def append_count_deltas(tx: Transaction, counts: Sequence[CheckCount]) -> None:
    """Add ``counts`` to the counters: one row appended to the ledger
    (``quality_count_deltas``), which no other writer touches, so concurrent transactions
    never wait on each other here (an upsert into ``quality_counts`` made the second of two
    writers of one institution wait for the first one's commit). A deferred statement (see
    :func:`insert_finding_rows`)."""
    append_count_delta_rows(
        tx, [(c.organization, c.month, c.rule_id, c.category.value, c.applicable, c.failed)
             for c in counts],
    )  # fmt: skip


def append_count_delta_rows(tx: Transaction, rows: Sequence[tuple[str, str, str, str, int, int]]
                            ) -> None:
    """:func:`append_count_deltas` of rows ``(organization, month, rule_id, category value,
    applicable, failed)``, as the write path builds them (no object per counter)."""
    if not rows:
        return
    tx.execute_later("INSERT INTO quality_count_deltas (deltas) VALUES (?)",
                     (orjson.dumps(rows).decode(),))


def _upsert_counts(tx: Transaction, counts: Sequence[CheckCount], dialect: str) -> None:
    """Add ``counts`` to ``quality_counts`` (each (organization, month, rule) once: a
    statement may not touch a row twice). On PostgreSQL one statement with the rows as one
    JSON parameter; on SQLite one per 200 rows."""
    if dialect == "postgresql":
        data = [(c.organization, c.month, c.rule_id, c.category.value, c.applicable, c.failed)
                for c in counts]  # fmt: skip
        tx.execute(
            "INSERT INTO quality_counts (organization, month, rule_id, category, applicable, "
            "failed) SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, (r->>5)::bigint "
            "FROM jsonb_array_elements(?::jsonb) AS t(r)" + _UPSERT_COUNTS,
            (orjson.dumps(data).decode(),),
        )
        return
    for start in range(0, len(counts), 200):
        chunk = counts[start:start + 200]
        rows: list[Any] = []
        for c in chunk:
            rows += [c.organization, c.month, c.rule_id, c.category.value, c.applicable,
                     c.failed]  # fmt: skip
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
        tx.execute(
            "INSERT INTO quality_counts (organization, month, rule_id, category, applicable, "
            f"failed) VALUES {values}" + _UPSERT_COUNTS,
            rows,
        )


def _add(
    totals: dict[tuple[str, str, str], list[Any]], org: str, month: str, rule_id: str,
    category: str, applicable: int, failed: int,
) -> None:
    """Add one counter's checks to ``totals`` ((organization, month, rule) → [category,
    applicable, failed])."""
    slot = totals.get((org, month, rule_id))
    if slot is None:
        totals[(org, month, rule_id)] = [category, applicable, failed]
    else:
        slot[1] += applicable
        slot[2] += failed


def _add_deltas(
    totals: dict[tuple[str, str, str], list[Any]], text: str, organization: str | None = None
) -> None:
    """Add one ledger row's deltas to ``totals``, of ``organization`` only when given."""
    for org, month, rule_id, category, applicable, failed in orjson.loads(text):
        if organization is None or org == organization:
            _add(totals, org, month, rule_id, category, applicable, failed)


def fold_count_deltas(repo: Repository, *, batch: int = 500) -> int:
    """Move the ledger into ``quality_counts``, ``batch`` rows a transaction (each taken
    and added up in one transaction, so a count is in exactly one of the two places at
    every moment); the number of ledger rows folded. Two folders at once take different
    rows (PostgreSQL's SKIP LOCKED; SQLite has one writer)."""
    lock = " FOR UPDATE SKIP LOCKED" if repo.dialect == "postgresql" else ""
    folded = 0
    while True:
        with repo.transaction() as tx:
            rows = tx.execute(
                "DELETE FROM quality_count_deltas WHERE id IN (SELECT id FROM "
                f"quality_count_deltas ORDER BY id LIMIT ?{lock}) RETURNING deltas",
                (batch,),
            )
            totals: dict[tuple[str, str, str], list[Any]] = {}
            for (text,) in rows:
                _add_deltas(totals, text)
            counts = [CheckCount(org, month, rule_id, Category(category), applicable, failed)
                      for (org, month, rule_id), (category, applicable, failed)
                      in totals.items()]  # fmt: skip
            if counts:
                _upsert_counts(tx, counts, repo.dialect)
        folded += len(rows)
        if len(rows) < batch:
            return folded


def count_rows(repo: Repository, organization: str | None = None) -> list[CheckCount]:
    """Every counter (of one institution when ``organization`` is given): the folded
    totals plus the ledger rows not folded yet, read in one statement (one snapshot, so a
    fold committing meanwhile can neither hide a count nor add it twice)."""
    where = " WHERE organization = ?" if organization is not None else ""
    sql = ("SELECT organization, month, rule_id, category, applicable, failed, "
           f"CAST(NULL AS TEXT) FROM quality_counts{where} UNION ALL "
           "SELECT NULL, NULL, NULL, NULL, 0, 0, deltas FROM quality_count_deltas")  # fmt: skip
    params: tuple[Any, ...] = (organization,) if organization is not None else ()
    totals: dict[tuple[str, str, str], list[Any]] = {}
    for org, month, rule_id, category, applicable, failed, deltas in repo.query(sql, params):
        if deltas is not None:
            _add_deltas(totals, deltas, organization)
        else:
            _add(totals, org, month, rule_id, category, int(applicable), int(failed))
    out: list[CheckCount] = []
    for (org, month, rule_id), (category, applicable, failed) in totals.items():
        cat = _CATEGORIES.get(category)
        if cat is not None:  # a category this version does not know is not scored
            out.append(CheckCount(org, month, rule_id, cat, applicable, failed))
    return out


def record_go_live(tx: Transaction, rows: Sequence[tuple[str, int]]) -> None:
    """Record each ``(organization, moment)`` as that institution's first receipt unless
    one is recorded already (two writers racing keep the first to commit): one deferred
    statement, which on PostgreSQL travels with the transaction's last flush (see
    :func:`insert_finding_rows`)."""
    if not rows:
        return
    values = ", ".join(["(?, ?)"] * len(rows))
    tx.execute_later(
        f"INSERT INTO quality_go_live (organization, first_received_at) VALUES {values} "
        "ON CONFLICT (organization) DO NOTHING",
        [v for row in rows for v in row],
    )


def go_live_rows(repo: Repository) -> dict[str, int]:
    """Every institution's first receipt, as committed. Read on a connection of its own: a
    statement in a writing transaction would flush its buffered rows first."""
    return {org: int(at) for org, at in repo.query(
        "SELECT organization, first_received_at FROM quality_go_live")}


def search_findings(repo: Repository, query: FindingQuery) -> tuple[list[StoredFinding], int]:
    """A page of findings, newest first, and the total matching."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("organization", query.organization), ("rule_id", query.rule_id),
        ("severity", query.severity), ("category", query.category),
        ("resource", query.resource), ("month", query.month),
    ):  # fmt: skip
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = int(repo.query(f"SELECT COUNT(*) FROM quality_findings{clause}", params)[0][0])
    rows = repo.query(
        "SELECT id, resource, version, rule_id, category, severity, expression, message_en, "
        f"message_zh, source, organization, month, created_at FROM quality_findings{clause} "
        "ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, query.count, query.offset],
    )
    found = [
        StoredFinding(
            int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
            int(r[12]),
        )
        for r in rows
    ]
    return found, total


def save_config(
    tx: Transaction, document: Mapping[str, Any], *, saved_at: int, saved_by: str,
    note: str | None = None,
) -> int:
    """Store a (validated) configuration document as the newest version; its id."""
    rows = tx.execute(
        "INSERT INTO quality_config (document, saved_at, saved_by, note) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        (orjson.dumps(dict(document)).decode(), saved_at, saved_by, note),
    )
    return int(rows[0][0])


def latest_config_id(tx: Transaction) -> int:
    """The id of the configuration in force (0: none stored)."""
    rows = tx.execute("SELECT MAX(id) FROM quality_config")
    return int(rows[0][0] or 0) if rows else 0


def latest_config(repo: Repository) -> StoredConfig | None:
    """The configuration in force, or None when no region document was ever stored."""
    rows = repo.query(
        "SELECT id, document, saved_at, saved_by, note FROM quality_config "
        "ORDER BY id DESC LIMIT 1"
    )
    if not rows:
        return None
    cid, document, saved_at, saved_by, note = rows[0]
    return StoredConfig(int(cid), orjson.loads(document), int(saved_at), saved_by, note)

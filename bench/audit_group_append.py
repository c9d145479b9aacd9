"""CPU per audit entry of a read's group commit, both ways (issue 2 with the audit log on).

    python bench/audit_group_append.py [--group 6] [--groups 1000] [--rounds 2]

Appends ``--groups`` groups of ``--group`` read entries to a fresh PostgreSQL database:

- ``two-step``: :meth:`AuditService.record_many` in a transaction per group (psycopg, the
  server's path before audit/pg_appends.py), then the sequencer every 50 groups and at the
  end (:meth:`AuditService.sequence`: read back, hash, ``UPDATE idx``, insert nodes);
- ``event-loop``: :class:`~huitong.audit.pg_appends.PgGroupAppender`, each group inserted
  with its positions and nodes in one transaction (two pipelined round trips).

Reports CPU milliseconds per entry of this process and of the PostgreSQL backends used
(``/proc``, same machine), the two alternating ``--rounds`` times; a wrk run's group size is
about 5-9 entries. Both end with every entry in the tree (the log verifies).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ADMIN_URL, fresh_database

from huitong.audit.entry import AccessBasis, Actor, AuditEntry, BasisKind
from huitong.audit.service import AuditService
from huitong.store import Repository, open_repository

NOW = 1_800_000_000_000_000


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backends(repo: Repository) -> list[int]:
    rows = repo.query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                      "AND application_name = 'huitong'")  # fmt: skip
    return [int(r[0]) for r in rows]


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        recorded=NOW + n, action="read", actor=Actor(role="anonymous", address="127.0.0.1"),
        basis=AccessBasis(BasisKind.ROLE, "authentication-off"), request_id=f"{n:032x}",
        resource_type="Observation", resources=(f"Observation/o{n}",),
        patients=(f"p{n % 1000}",),
    )  # fmt: skip


def two_step(service: AuditService, size: int, groups: int, first: int) -> tuple[float, float]:
    repo = service.repo
    db0 = {p: _cpu(p) for p in _backends(repo)}
    cpu0 = time.process_time()
    for g in range(groups):
        with repo.transaction() as tx:
            service.record_many(tx, [_entry(first + g * size + k) for k in range(size)])
        if g % 50 == 49:
            service.sequence()
    service.sequence_all()
    cpu = time.process_time() - cpu0
    db = sum(_cpu(p) - db0.get(p, 0.0) for p in _backends(repo))
    return cpu, db


def event_loop(service: AuditService, size: int, groups: int, first: int) -> tuple[float, float]:
    appender = service.group_appender()
    assert appender is not None

    async def run() -> tuple[float, float]:
        await appender.append([_entry(first)])  # connect and prepare, not measured
        pid = appender._pipe.pg.backend_pid  # type: ignore[union-attr]
        db0, cpu0 = _cpu(pid), time.process_time()
        for g in range(groups):
            await appender.append([_entry(first + 1 + g * size + k) for k in range(size)])
        cpu, db = time.process_time() - cpu0, _cpu(pid) - db0
        await appender.close()
        return cpu, db

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--group", type=int, default=6)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    url = fresh_database("postgresql")
    repo = open_repository(url)
    service = AuditService(repo)
    n = args.group * args.groups
    first = 0
    try:
        for r in range(args.rounds):
            for name, fn in (("two-step", two_step), ("event-loop", event_loop)):
                cpu, db = fn(service, args.group, args.groups, first)
                first += n + 1
                print(f"round {r + 1} {name:10} group {args.group}: "
                      f"client {cpu / n * 1e3:.3f} ms/entry, PostgreSQL {db / n * 1e3:.3f} "
                      f"ms/entry")  # fmt: skip
        report = service.verify()
        print(f"log of {report.size} entries verifies: {report.ok}")
    finally:
        repo.close()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()

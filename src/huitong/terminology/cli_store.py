"""The repository side of ``huitong terminology``: ``load --db`` and ``list --db``.

The database is named as for every other command (``--db`` or ``HUITONG_DATABASE_URL``); a
SQLite file is migrated on open, PostgreSQL is left to ``huitong db upgrade``. Messages are
in English and Simplified Chinese.
"""

from __future__ import annotations

from typing import Any

import click

from huitong.cli_support import fail, open_database
from huitong.fhir.errors import FhirError

__all__ = ["DB_OPTION", "list_command", "save_to_database"]

DB_OPTION = click.Option(["--db", "db"], help="Database URL / 数据库地址 (HUITONG_DATABASE_URL).")


_fail = fail


def _open(db: str | None) -> Any:
    return open_database(db)[1]


def save_to_database(code_system: dict[str, Any], options: dict[str, Any]) -> str:
    """Store ``code_system`` (create, or replace the same url+version); returns where."""
    from huitong.terminology.persist import save_terminology_resource

    repo = _open(options.get("db"))
    try:
        outcome = save_terminology_resource(repo, code_system)
    except FhirError as exc:
        _fail(f"Cannot store the code system: {exc.message}",
              f"无法保存代码系统：{exc.message}")
    finally:
        repo.close()
    s = outcome.stored
    return f"CodeSystem/{s.id}/_history/{s.version_id}"


@click.command("list")
@click.option("--db", "db", help="Database URL / 数据库地址 (HUITONG_DATABASE_URL).")
def list_command(db: str | None) -> None:
    """Stored code systems and their versions / 已保存的代码系统及其版本."""
    from huitong.fhir.search.parse import parse_search
    from huitong.store.repository import iter_pages

    repo = _open(db)
    try:
        # Page by page: a large release is parsed, counted and dropped before the next.
        query = parse_search("CodeSystem", [("_count", "20"), ("_sort", "url")])
        rows = []
        for stored in iter_pages(repo, query):
            cs = stored.resource
            rows.append((cs.get("url", ""), cs.get("version") or "-",
                         cs.get("count", len(cs.get("concept") or ())), stored.id))
    finally:
        repo.close()
    if not rows:
        click.echo("No code systems stored.\n尚未保存任何代码系统。")
        return
    for url, version, count, rid in rows:
        click.echo(f"{url}  {version}  {count}  CodeSystem/{rid}")
    click.echo(f"{len(rows)} code system versions / 共 {len(rows)} 个代码系统版本")

"""What every ``huitong`` command group shares: the ``--db`` option, a bilingual failure
that exits, and opening the configured database (SQLite upgraded on open, as the server
does; PostgreSQL left to ``huitong db upgrade``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from huitong.config import Settings
    from huitong.store.repository import Repository

__all__ = ["DB_OPTION", "fail", "open_database"]

DB_OPTION = click.option("--db", "db_url",
                         help="Database URL / 数据库地址 (HUITONG_DATABASE_URL).")  # fmt: skip


def fail(en: str, zh: str, code: int = 1) -> NoReturn:
    """Print the failure in English and Chinese on stderr and exit with ``code``."""
    click.secho(f"{en}\n{zh}", fg="red", err=True)
    sys.exit(code)


def open_database(db_url: str | None, *, code: int = 1) -> tuple[Settings, Repository]:
    """The settings (``db_url`` over ``HUITONG_DATABASE_URL``) and the opened repository;
    exits with ``code`` and a bilingual reason when the database cannot be opened."""
    from huitong.config import Settings
    from huitong.fhir.errors import FhirError
    from huitong.store import open_repository

    settings = Settings.from_env(database_url=db_url)
    url = settings.database_url
    try:
        repo = open_repository(url, upgrade=url.startswith("sqlite:"),
                               local_base=settings.base_url or None)  # fmt: skip
    except FhirError as exc:
        fail(f"Cannot open the database: {exc.message}", f"无法打开数据库：{exc.message}", code)
    return settings, repo

"""Pick an engine from a database URL."""

from __future__ import annotations

from typing import Any

from huitong.fhir.errors import Category, FhirError
from huitong.store._base import BaseRepository

__all__ = ["open_engine"]


def open_engine(url: str, **kwargs: Any) -> BaseRepository:
    """``sqlite:///relative/or//absolute/path``, ``sqlite:///:memory:``, or
    ``postgresql://…`` (also ``postgres://``). Applies pending migrations unless
    ``upgrade=False``."""
    if url.startswith("sqlite:///"):
        from huitong.store.sqlite import SQLiteRepository

        return SQLiteRepository(url.removeprefix("sqlite:///"), **kwargs)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from huitong.store.postgres import PostgresRepository

        return PostgresRepository(url.replace("postgresql+psycopg://", "postgresql://"), **kwargs)
    raise FhirError(
        Category.INVALID,
        "unsupported database URL: use sqlite:///path or postgresql://… / "
        "不支持的数据库地址：请使用 sqlite:///路径 或 postgresql://…",
    )

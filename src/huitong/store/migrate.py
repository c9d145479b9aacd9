"""Schema migrations: numbered SQL files per engine, applied in order, recorded in a table.

``migrations/<dialect>/NNNN_name.sql`` is the whole history of the schema. Each file runs in
its own transaction with its row in ``schema_migrations``, so a failed upgrade leaves the
database at the previous version. No ORM: the two engines' DDL differ in types and index
options, and the files say exactly what each database gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "migrations_for", "pending"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_for(dialect: str) -> list[Migration]:
    """Every migration shipped for ``dialect`` (``sqlite`` or ``postgresql``), in order."""
    folder = resources.files("huitong.store").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def pending(dialect: str, applied: set[int]) -> list[Migration]:
    """The migrations not yet in ``applied``."""
    return [m for m in migrations_for(dialect) if m.version not in applied]

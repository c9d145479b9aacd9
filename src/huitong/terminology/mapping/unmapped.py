"""The unmapped-codes queue: which local codes still have no standard mapping, and how many
records each affects (the counts come from the caller, who knows the records)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["UnmappedCode", "UnmappedReport", "unmapped_report"]


@dataclass(frozen=True, slots=True)
class UnmappedCode:
    system: str
    code: str
    display: str | None
    affected_records: int


@dataclass(frozen=True, slots=True)
class UnmappedReport:
    items: tuple[UnmappedCode, ...]  # most affected records first

    @property
    def total_codes(self) -> int:
        return len(self.items)

    @property
    def total_records(self) -> int:
        return sum(i.affected_records for i in self.items)

    def by_system(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.items:
            out[i.system] = out.get(i.system, 0) + i.affected_records
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Plain rows for a JSON or CSV export."""
        return [{"system": i.system, "code": i.code, "display": i.display or "",
                 "affected_records": i.affected_records} for i in self.items]


def unmapped_report(
    entries: Iterable[UnmappedCode], *, mapped: Iterable[tuple[str, str]] = ()
) -> UnmappedReport:
    """Merge entries for the same ``(system, code)`` (adding their counts), drop codes now in
    ``mapped``, and order by affected records, then system and code."""
    done = set(mapped)
    merged: dict[tuple[str, str], UnmappedCode] = {}
    for e in entries:
        key = (e.system, e.code)
        if key in done:
            continue
        prior = merged.get(key)
        merged[key] = e if prior is None else UnmappedCode(
            e.system, e.code, prior.display or e.display,
            prior.affected_records + e.affected_records)
    items = sorted(merged.values(), key=lambda i: (-i.affected_records, i.system, i.code))
    return UnmappedReport(tuple(items))

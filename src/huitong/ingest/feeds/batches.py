"""Grouping mapped records into transaction Bundles of ``batch_size`` records, so a feed of any
length is converted with one batch's resources in memory at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from huitong.ingest.feeds.mapping import FeedMapping
from huitong.ingest.feeds.problems import Problem, Reason
from huitong.ingest.feeds.records import (
    Getter,
    ResourcePlan,
    map_record,
    plan_mapping,
    validation_problems,
)
from huitong.ingest.feeds.transaction import Conversion, Transaction

__all__ = ["Record", "Unchecked", "batch_records"]


@dataclass(slots=True)
class Record:
    """One input record: ``get`` reads a source value, ``row``/``line`` say where it is,
    ``pointer`` turns a source name into a JSON Pointer (JSON input only), ``problems`` are
    those found while reading it (a record with an error problem is not mapped)."""

    get: Getter
    row: int
    line: int | None = None
    pointer: Callable[[str], str] | None = None
    problems: list[Problem] | None = None


def _placed(p: Problem, rec: Record) -> Problem:
    pointer = rec.pointer(p.field) if rec.pointer is not None and p.field else None
    return replace(p, row=rec.row, line=rec.line, pointer=pointer or p.pointer)


@dataclass(frozen=True, slots=True)
class Unchecked:
    """A record accepted without FHIR validation (``validate=False``), and
    ``conversion.problems[start:end]`` the problems its mapping added after those of its
    reading (only ``duplicate`` warnings: any other makes the record bad). A validating
    conversion would have reported its validation problems there instead (:meth:`remap`
    with ``validate``) and left the record out. ``mapping`` and ``plans`` map it again."""

    record: Record
    start: int
    end: int
    mapping: FeedMapping
    plans: tuple[ResourcePlan, ...]

    def remap(self, *, validate: bool) -> tuple[list[dict[str, Any]], list[Problem]]:
        """The record mapped again: its Bundle entries as new objects, equal to those of its
        conversion (mapping is a pure function of the record), for a caller whose write
        changed the first ones in place; and with ``validate`` the validation problems of
        the new resources, placed (row, line, pointer) as :func:`batch_records` places
        them (empty when they are valid)."""
        built, found = map_record(self.mapping, self.record.get, self.plans, validate=False)
        assert not found  # it was mapped without problems the first time
        tx = Transaction()
        for b in built:  # in order, a later resource replacing an earlier one of its identity
            tx.add(b.resource, b.system, b.value, b.mode)
        problems = ([_placed(p, self.record) for p in validation_problems(built)]
                    if validate else [])
        return list(tx.bundle().get("entry", ())), problems


def batch_records(records: Iterable[Record | Problem], mapping: FeedMapping, *,
                  validate: bool = True) -> Iterator[Conversion]:
    """Map each record and yield one :class:`Conversion` per ``mapping.batch_size`` records
    (a bare :class:`Problem` in ``records`` is a file-level problem, reported in the batch
    being filled). ``validate`` is passed to :func:`map_record`."""
    tx, problems, count, accepted, first = Transaction(), [], 0, 0, 1
    unchecked: list[Unchecked] = []
    plans = plan_mapping(mapping)
    for rec in records:
        if isinstance(rec, Problem):
            problems.append(rec)
            continue
        if count == 0:
            first = rec.row
        count += 1
        if rec.problems:
            problems.extend(_placed(p, rec) for p in rec.problems)
        if not any(p.severity == "error" for p in rec.problems or ()):
            built, found = map_record(mapping, rec.get, plans, validate=validate)
            problems.extend(_placed(p, rec) for p in found)
            start = len(problems)
            for b in built:
                key = (b.resource["resourceType"], b.system, b.value)
                previous = tx.resource(key)
                tx.add(b.resource, b.system, b.value, b.mode)
                if previous is not None and previous != b.resource:
                    problems.append(_placed(Problem(
                        Reason.DUPLICATE,
                        f"{key[0]} with this identity also came from an earlier record of this "
                        "batch; this record's content is used",
                        f"本批次中较早的记录已产生相同标识的 {key[0]}，以本记录内容为准",
                        field="identifier", severity="warning"), rec))
            if not found:
                accepted += 1
                if not validate:
                    unchecked.append(Unchecked(rec, start, len(problems), mapping, plans))
        if count >= mapping.batch_size:
            yield Conversion(tx.bundle(), problems, count, accepted, first, unchecked)
            tx, problems, count, accepted, unchecked = Transaction(), [], 0, 0, []
    if count or problems:
        yield Conversion(tx.bundle(), problems, count, accepted, first, unchecked)

"""Link state: which source records belong to which golden record, and its history.

Every operation is a pure transition ``LinkState → LinkState`` that appends a
:class:`LinkEvent` (who, when, why) to the history; nothing is ever forgotten, so an unmerge
can restore exactly what a merge moved, and a certainly-not decision persists. Invalid
operations raise :class:`LinkError` with a reason code and English/Chinese messages.

Operations: ``link`` (attach a source to a golden), ``unlink`` (detach; the source gets no
golden until re-decided or linked), ``merge`` (move every source of one golden to another;
the old golden is retired as replaced-by), ``unmerge`` (undo one merge by its event
number), ``mark_certainly_not`` (remember that two references are different people).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from huitong.mpi.decisions import pair_key
from huitong.mpi.model import Grade

__all__ = [
    "Link",
    "LinkError",
    "LinkEvent",
    "LinkState",
    "link",
    "mark_certainly_not",
    "merge",
    "unlink",
    "unmerge",
]

Operation = Literal["link", "unlink", "merge", "unmerge", "certainly-not"]

_MESSAGES = {
    "already-linked": ("The source record is already linked to another golden record.",
                       "该源记录已关联到另一条主记录。"),
    "not-linked": ("The source record is not linked.", "该源记录尚未关联。"),
    "retired": ("That golden record was merged into another and is retired.",
                "该主记录已被合并，不再使用。"),
    "same-golden": ("A golden record cannot be merged into itself.", "主记录不能与自身合并。"),
    "empty-golden": ("The golden record has no linked source records.",
                     "该主记录没有关联的源记录。"),
    "not-a-merge": ("That history entry is not a merge.", "该历史记录不是一次合并。"),
    "already-unmerged": ("That merge was already undone.", "该合并已被撤销。"),
    "certainly-not": ("An operator marked these records as different people.",
                      "操作员已确认这两条记录不是同一人。"),
    "no-reason": ("A reason is required.", "必须填写原因。"),
}  # fmt: skip


class LinkError(ValueError):
    """An operation that the link state does not allow; ``reason`` is a code."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.message_en, self.message_zh = _MESSAGES[reason]
        super().__init__(self.message_en)


@dataclass(frozen=True, slots=True)
class Link:
    golden: str
    grade: Grade
    by: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class LinkEvent:
    number: int
    operation: Operation
    by: str
    at: datetime
    reason: str
    source: str | None = None
    golden: str | None = None
    other: str | None = None  # merge: the golden merged away; certainly-not: the 2nd ref
    moved: tuple[str, ...] = ()  # merge: the sources moved, so unmerge can move them back


@dataclass(frozen=True, slots=True)
class LinkState:
    links: dict[str, Link] = field(default_factory=dict)
    retired: dict[str, str] = field(default_factory=dict)  # golden → golden it merged into
    certainly_not: frozenset[frozenset[str]] = frozenset()
    history: tuple[LinkEvent, ...] = ()

    def sources_of(self, golden: str) -> list[str]:
        return sorted(s for s, lk in self.links.items() if lk.golden == golden)

    def _event(self, operation: Operation, by: str, at: datetime, reason: str,
               **kw: object) -> LinkEvent:  # fmt: skip
        if not reason.strip():
            raise LinkError("no-reason")
        return LinkEvent(len(self.history) + 1, operation, by, at, reason, **kw)  # type: ignore[arg-type]


def link(state: LinkState, source: str, golden: str, *, by: str, at: datetime, reason: str,
         grade: Grade = "certain") -> LinkState:  # fmt: skip
    """Attach ``source`` to ``golden``; refuses a retired golden, a source already linked
    elsewhere (unlink first) and a pair marked certainly-not."""
    if golden in state.retired:
        raise LinkError("retired")
    current = state.links.get(source)
    if current is not None and current.golden != golden:
        raise LinkError("already-linked")
    if pair_key(source, golden) in state.certainly_not or any(
        pair_key(source, other) in state.certainly_not for other in state.sources_of(golden)
    ):
        raise LinkError("certainly-not")
    event = state._event("link", by, at, reason, source=source, golden=golden)
    links = {**state.links, source: Link(golden, grade, by, at, reason)}
    return replace(state, links=links, history=(*state.history, event))


def unlink(state: LinkState, source: str, *, by: str, at: datetime, reason: str) -> LinkState:
    """Detach ``source`` from its golden record."""
    current = state.links.get(source)
    if current is None:
        raise LinkError("not-linked")
    event = state._event("unlink", by, at, reason, source=source, golden=current.golden)
    links = {s: lk for s, lk in state.links.items() if s != source}
    return replace(state, links=links, history=(*state.history, event))


def merge(state: LinkState, retire: str, into: str, *, by: str, at: datetime,
          reason: str) -> LinkState:  # fmt: skip
    """Move every source of golden ``retire`` to golden ``into`` and retire ``retire``.

    Refused when the two goldens hold a certainly-not pair between them.
    """
    if retire == into:
        raise LinkError("same-golden")
    if retire in state.retired or into in state.retired:
        raise LinkError("retired")
    moved = tuple(state.sources_of(retire))
    if not moved:
        raise LinkError("empty-golden")
    targets = [*state.sources_of(into), into]
    if any(pair_key(s, t) in state.certainly_not for s in (*moved, retire) for t in targets):
        raise LinkError("certainly-not")
    event = state._event("merge", by, at, reason, golden=into, other=retire, moved=moved)
    links = dict(state.links)
    for s in moved:
        links[s] = Link(into, links[s].grade, by, at, reason)
    return replace(state, links=links, retired={**state.retired, retire: into},
                   history=(*state.history, event))  # fmt: skip


def unmerge(state: LinkState, merge_event: int, *, by: str, at: datetime,
            reason: str) -> LinkState:  # fmt: skip
    """Undo merge number ``merge_event``: its moved sources return to the revived golden.

    Sources moved since (re-linked by an operator) stay where they are now.
    """
    if not 1 <= merge_event <= len(state.history):
        raise LinkError("not-a-merge")
    original = state.history[merge_event - 1]
    if original.operation != "merge" or original.other is None or original.golden is None:
        raise LinkError("not-a-merge")
    if any(e.operation == "unmerge" and e.other == str(merge_event) for e in state.history):
        raise LinkError("already-unmerged")
    revived, into = original.other, original.golden
    event = state._event("unmerge", by, at, reason, golden=revived, other=str(merge_event),
                         moved=original.moved)  # fmt: skip
    links = dict(state.links)
    for s in original.moved:
        if s in links and links[s].golden == into:
            links[s] = Link(revived, links[s].grade, by, at, reason)
    retired = {g: t for g, t in state.retired.items() if g != revived}
    return replace(state, links=links, retired=retired, history=(*state.history, event))


def mark_certainly_not(state: LinkState, a: str, b: str, *, by: str, at: datetime,
                       reason: str) -> LinkState:  # fmt: skip
    """Remember that references ``a`` and ``b`` (sources or goldens) are different people.

    When both are sources linked to the same golden, ``b`` is unlinked in the same step.
    """
    event = state._event("certainly-not", by, at, reason, source=a, other=b)
    links = state.links
    la, lb = links.get(a), links.get(b)
    if la is not None and lb is not None and la.golden == lb.golden:
        links = {s: lk for s, lk in links.items() if s != b}
    elif la is not None and la.golden == b:
        links = {s: lk for s, lk in links.items() if s != a}
    return replace(state, links=links, certainly_not=state.certainly_not | {pair_key(a, b)},
                   history=(*state.history, event))  # fmt: skip

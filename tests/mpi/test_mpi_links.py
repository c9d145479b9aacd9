"""Link-state transitions: link, unlink, merge, unmerge, certainly-not, with history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from huitong.mpi.links import (
    LinkError,
    LinkState,
    link,
    mark_certainly_not,
    merge,
    unlink,
    unmerge,
)

AT = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
WHO = {"by": "Practitioner/op1", "at": AT, "reason": "reviewed"}


def _two_goldens() -> LinkState:
    s = LinkState()
    s = link(s, "Patient/a", "Patient/g1", **WHO)
    s = link(s, "Patient/b", "Patient/g1", **WHO)
    s = link(s, "Patient/c", "Patient/g2", **WHO)
    return s


def test_link_records_who_when_why() -> None:
    s = _two_goldens()
    assert s.sources_of("Patient/g1") == ["Patient/a", "Patient/b"]
    lk = s.links["Patient/a"]
    assert (lk.golden, lk.by, lk.at, lk.reason) == ("Patient/g1", "Practitioner/op1", AT, "reviewed")
    assert [e.operation for e in s.history] == ["link", "link", "link"]
    assert [e.number for e in s.history] == [1, 2, 3]


def test_transitions_do_not_mutate_the_previous_state() -> None:
    s = _two_goldens()
    after = unlink(s, "Patient/a", **WHO)
    assert "Patient/a" in s.links and "Patient/a" not in after.links
    assert len(after.history) == len(s.history) + 1


def test_cannot_link_a_source_already_linked_elsewhere() -> None:
    with pytest.raises(LinkError) as info:
        link(_two_goldens(), "Patient/a", "Patient/g2", **WHO)
    assert info.value.reason == "already-linked"
    assert info.value.message_zh


def test_unlink_of_unlinked_source_fails() -> None:
    with pytest.raises(LinkError, match="not linked"):
        unlink(LinkState(), "Patient/x", **WHO)


def test_reason_is_required() -> None:
    with pytest.raises(LinkError) as info:
        link(LinkState(), "Patient/a", "Patient/g1", by="x", at=AT, reason=" ")
    assert info.value.reason == "no-reason"


def test_merge_moves_sources_and_retires_the_golden_then_unmerge_restores() -> None:
    s = merge(_two_goldens(), "Patient/g2", "Patient/g1", **WHO)
    assert s.sources_of("Patient/g1") == ["Patient/a", "Patient/b", "Patient/c"]
    assert s.retired == {"Patient/g2": "Patient/g1"}
    merge_number = s.history[-1].number
    with pytest.raises(LinkError) as info:
        link(s, "Patient/d", "Patient/g2", **WHO)
    assert info.value.reason == "retired"
    back = unmerge(s, merge_number, **WHO)
    assert back.sources_of("Patient/g1") == ["Patient/a", "Patient/b"]
    assert back.sources_of("Patient/g2") == ["Patient/c"]
    assert back.retired == {}
    with pytest.raises(LinkError) as again:
        unmerge(back, merge_number, **WHO)
    assert again.value.reason == "already-unmerged"


def test_unmerge_needs_a_merge_event() -> None:
    with pytest.raises(LinkError) as info:
        unmerge(_two_goldens(), 1, **WHO)
    assert info.value.reason == "not-a-merge"


def test_merge_into_itself_is_refused() -> None:
    with pytest.raises(LinkError):
        merge(_two_goldens(), "Patient/g1", "Patient/g1", **WHO)


def test_certainly_not_splits_and_is_remembered() -> None:
    s = mark_certainly_not(_two_goldens(), "Patient/a", "Patient/b", **WHO)
    assert "Patient/b" not in s.links  # split off its golden
    assert s.history[-1].operation == "certainly-not"
    # ...and never re-linked, nor merged back in through its golden.
    with pytest.raises(LinkError) as info:
        link(s, "Patient/b", "Patient/g1", **WHO)
    assert info.value.reason == "certainly-not"
    s = link(s, "Patient/b", "Patient/g3", **WHO)
    with pytest.raises(LinkError):
        merge(s, "Patient/g3", "Patient/g1", **WHO)

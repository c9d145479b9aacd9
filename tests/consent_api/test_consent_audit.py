"""Consent changes, break-glass and share codes land in the audit log, in the transaction
of the change, with the basis the patient will see (issue 5, "Audit")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from consent_world import World

from huitong.access import Role
from huitong.audit.entry import AuditEntry, BasisKind, Outcome, parse_entry
from huitong.store.repository import Repository


@pytest.fixture
def audited(repo: Repository) -> Iterator[World]:
    w = World(repo, audit="on")
    w.account("clin-a", Role.CLINICIAN, org="org-a", practitioner="pr-a")
    w.account("pat-pb1", Role.PATIENT, patient_ids=("pb1",))
    yield w
    w.close()


def _events(repo: Repository) -> list[AuditEntry]:
    rows = repo.query("SELECT entry FROM audit_entries ORDER BY seq")
    wanted = {"break-glass", "share-code-issued", "share-code-redeemed", "consent-change"}
    return [e for e in (parse_entry(bytes(r[0])) for r in rows) if e.action in wanted]


def test_consent_events_are_audited(audited: World, repo: Repository) -> None:
    w = audited
    issued = w.api("POST", w.token("pat-pb1"), "share-codes", {"validMinutes": 30})
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    wrong = "".join(reversed(code)) if code != code[::-1] else code[1:] + code[0]
    assert w.api("POST", w.token("clin-a"), "share-codes/redeem", {"code": wrong}).status_code in (
        404,
        409,
        410,
    )
    ok = w.api("POST", w.token("clin-a"), "share-codes/redeem", {"code": code})
    assert ok.status_code == 200, ok.text
    reason = "Unconscious in the emergency room, no relatives reachable"
    glass = w.api("POST", w.token("clin-a"), "break-glass", {"patient": "pb1", "reason": reason})
    assert glass.status_code == 201, glass.text

    got = [(e.action, e.outcome, e.basis.kind, e.patients) for e in _events(repo)]
    clin = w.user_id("clin-a")
    assert got[0] == ("share-code-issued", Outcome.SUCCESS, BasisKind.SHARE_CODE, ("pb1",))
    assert got[1][:3] == ("share-code-redeemed", Outcome.MINOR_FAILURE, BasisKind.DENIED)
    assert got[2] == ("share-code-redeemed", Outcome.SUCCESS, BasisKind.SHARE_CODE, ("pb1",))
    assert got[3] == ("break-glass", Outcome.SUCCESS, BasisKind.BREAK_GLASS, ("pb1",))
    glass_entry = _events(repo)[3]
    assert glass_entry.actor.user == clin and glass_entry.actor.organization == "org-a"
    assert glass_entry.basis.justification == reason and glass_entry.basis.until
    # the share code itself never enters the log
    raw = b"".join(bytes(r[0]) for r in repo.query("SELECT entry FROM audit_entries"))
    assert code.encode() not in raw

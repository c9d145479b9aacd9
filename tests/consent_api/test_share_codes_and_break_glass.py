"""Share codes (valid / used / expired / withdrawn / grant ended) and break-glass (active /
expired) through the real app: read, search with total and $everything give exactly what
each state allows, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from consent_world import HOUR, World
from enforce_helpers import HEART_RATE, LOINC, ORG_A_SEES, ids, obs_of

from huitong.access.share_codes import CODE_ALPHABET, CODE_LENGTH

CODE = f"code={LOINC}|{HEART_RATE}"
MINUTE = 60_000_000


def _reach(w: World, who: str, pid: str) -> tuple[int, set[str], int, int]:
    """(read status of obs-<pid>, observation ids found by search, search total,
    $everything status) for ``who`` at the current clock, with a fresh token."""
    token = w.token(who)
    found = w.get(token, f"Observation?{CODE}").json()
    return (
        w.get(token, f"Observation/obs-{pid}").status_code,
        ids(found),
        found["total"],
        w.get(token, f"Patient/{pid}/$everything").status_code,
    )


def _issue(w: World, patient: str, **body: Any) -> dict[str, Any]:
    resp = w.api("POST", w.token(patient), "share-codes", body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_share_code_states(world: World) -> None:
    w = world
    base = obs_of(ORG_A_SEES)
    issued = _issue(
        w, "pat-pb1", resourceTypes=["Observation", "Patient"], validMinutes=30, accessHours=2
    )
    code = issued["code"]
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
    assert issued["qr"].endswith(code) and issued["display"] == f"{code[:4]}-{code[4:]}"
    assert _reach(w, "clin-a", "pb1") == (404, base, len(base), 404)  # not yet redeemed
    # redeemed (typed with a hyphen and lower case): the next request sees pb1
    resp = w.api(
        "POST", w.token("clin-a"), "share-codes/redeem", {"code": issued["display"].lower()}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["patient"] == "pb1"
    shared = base | {"obs-pb1"}
    assert _reach(w, "clin-a", "pb1") == (200, shared, len(shared), 200)
    everything = w.get(w.token("clin-a"), "Patient/pb1/$everything").json()
    assert ids(everything) >= {"pb1", "obs-pb1"} and "cons-pb2" not in ids(everything)
    # nobody else got anything from it
    assert _reach(w, "clin-b", "pa1")[0] == 404
    # used once: refused, clearly, in both languages
    again = w.api("POST", w.token("clin-b"), "share-codes/redeem", {"code": code})
    assert again.status_code == 409 and "已被使用" in again.text and "already" in again.text
    assert w.get(w.token("clin-b"), "Observation/obs-pa1").status_code == 404
    # the patient sees who redeemed it and until when
    listed = w.api("GET", w.token("pat-pb1"), "share-codes").json()["shareCodes"]
    assert [(c["status"], c["redeemedBy"]) for c in listed] == [("active", w.user_id("clin-a"))]
    # the grant ends after the access time: the next request no longer sees pb1
    w.clock.now += 2 * HOUR + 1
    assert _reach(w, "clin-a", "pb1") == (404, base, len(base), 404)


def test_share_code_refusals_and_withdrawal(world: World) -> None:
    w = world
    rows: list[tuple[str, str, int, str]] = []
    expired = _issue(w, "pat-pb1", validMinutes=1)
    withdrawn = _issue(w, "pat-pb1")
    unused_then_withdrawn = withdrawn["codeId"]
    assert (
        w.api(
            "POST", w.token("pat-pb1"), f"share-codes/{unused_then_withdrawn}/withdraw"
        ).status_code
        == 200
    )
    w.clock.now += 2 * MINUTE
    rows = [
        ("clin-a", expired["code"], 410, "已过期"),
        ("clin-a", withdrawn["code"], 410, "撤回"),
        ("clin-a", "ZZZZ-ZZZZ", 404, "没有该共享码"),
        ("clin-a", "ABC", 404, "8 位"),
        ("pat-pb1", "ZZZZ-ZZZZ", 403, "临床医生"),
    ]
    wrong = []
    for who, code, status, zh in rows:
        resp = w.api("POST", w.token(who), "share-codes/redeem", {"code": code})
        if resp.status_code != status or zh not in resp.text:
            wrong.append(f"{who} {code}: {resp.status_code} {resp.text[:200]}")
    assert not wrong, "\n".join(wrong)
    # a redeemed code withdrawn by the patient ends the grant on the next request
    live = _issue(w, "pat-pb1")
    assert (
        w.api("POST", w.token("clin-a"), "share-codes/redeem", {"code": live["code"]}).status_code
        == 200
    )
    assert w.get(w.token("clin-a"), "Observation/obs-pb1").status_code == 200
    assert (
        w.api("POST", w.token("pat-pb1"), f"share-codes/{live['codeId']}/withdraw").status_code
        == 200
    )
    assert w.get(w.token("clin-a"), "Observation/obs-pb1").status_code == 404
    # another patient cannot withdraw it, nor issue codes for a record not theirs
    assert (
        w.api("POST", w.token("pat-pa1"), f"share-codes/{live['codeId']}/withdraw").status_code
        == 404
    )
    assert w.api("POST", w.token("pat-pa1"), "share-codes", {"patient": "pb1"}).status_code == 403
    statuses = {
        c["codeId"]: c["status"]
        for c in w.api("GET", w.token("pat-pb1"), "share-codes").json()["shareCodes"]
    }
    assert statuses == {
        expired["codeId"]: "expired",
        withdrawn["codeId"]: "withdrawn",
        live["codeId"]: "withdrawn",
    }


@pytest.mark.parametrize(("labels", "hiv_status"), [((), 404), (("HIV",), 200)])
def test_share_code_scope_and_sensitive_labels(
    world: World, labels: tuple[str, ...], hiv_status: int
) -> None:
    w = world
    issued = _issue(w, "pat-pa1", resourceTypes=["Observation"], labels=list(labels))
    assert (
        w.api("POST", w.token("clin-b"), "share-codes/redeem", {"code": issued["code"]}).status_code
        == 200
    )
    token = w.token("clin-b")
    rows = {
        "Observation/obs-pa1": w.get(token, "Observation/obs-pa1").status_code,
        "Observation/obs-hiv-pa1": w.get(token, "Observation/obs-hiv-pa1").status_code,
        "Patient/pa1": w.get(token, "Patient/pa1").status_code,  # not in the code's scope
    }
    assert rows == {
        "Observation/obs-pa1": 200,
        "Observation/obs-hiv-pa1": hiv_status,
        "Patient/pa1": 404,
    }
    found = w.get(token, "Observation?subject=Patient/pa1").json()
    expected = {"obs-pa1"} | ({"obs-hiv-pa1"} if labels else set())
    assert ids(found) == expected and found["total"] == len(expected)


def test_break_glass_active_then_expired(world: World) -> None:
    w = world
    base = obs_of(ORG_A_SEES)
    refusals = [
        ("clin-a", {"patient": "pb1", "reason": "urgent"}, 400),  # too short
        ("clin-a", {"patient": "pb1"}, 400),
        ("clin-a", {"patient": "no-such", "reason": "unconscious, no relatives"}, 404),
        ("pat-pb1", {"patient": "pb1", "reason": "unconscious, no relatives"}, 403),
        ("admin", {"patient": "pb1", "reason": "unconscious, no relatives"}, 403),
    ]
    got = [
        (who, body, w.api("POST", w.token(who), "break-glass", body).status_code)
        for who, body, _ in refusals
    ]
    assert got == refusals
    assert _reach(w, "clin-a", "pb1") == (404, base, len(base), 404)

    reason = "Unconscious in the emergency room, no relatives reachable"
    resp = w.api("POST", w.token("clin-a"), "break-glass", {"patient": "pb1", "reason": reason})
    assert resp.status_code == 201, resp.text
    opened = base | {"obs-pb1"}
    assert _reach(w, "clin-a", "pb1") == (200, opened, len(opened), 200)
    everything = w.get(w.token("clin-a"), "Patient/pb1/$everything").json()
    assert {"pb1", "obs-pb1"} <= ids(everything)
    assert _reach(w, "clin-b", "pa1")[0] == 404  # only the clinician who broke the glass
    # the patient sees who, when and why
    seen = w.api("GET", w.token("pat-pb1"), "break-glass").json()["breakGlass"]
    assert [(s["user"], s["organization"], s["reason"], s["active"]) for s in seen] == [
        (w.user_id("clin-a"), "org-a", reason, True)
    ]
    assert w.api("GET", w.token("pat-pa1"), "break-glass").json()["breakGlass"] == []
    # four hours later (the default) the window is shut on the next request
    w.clock.now += 4 * HOUR
    assert _reach(w, "clin-a", "pb1") == (404, base, len(base), 404)


def test_break_glass_closed_early(world: World) -> None:
    w = world
    resp = w.api(
        "POST",
        w.token("clin-b"),
        "break-glass",
        {"patient": "pa1", "reason": "Anaphylaxis, allergy history needed"},
    )
    session = resp.json()["id"]
    assert w.get(w.token("clin-b"), "Observation/obs-hiv-pa1").status_code == 200  # emergency
    assert w.api("POST", w.token("clin-a"), f"break-glass/{session}/close").status_code == 404
    assert w.api("POST", w.token("clin-b"), f"break-glass/{session}/close").status_code == 200
    assert w.get(w.token("clin-b"), "Observation/obs-pa1").status_code == 404

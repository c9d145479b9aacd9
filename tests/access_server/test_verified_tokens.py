"""The kept signature checks of access tokens (access/verified_tokens.py): a token is
verified once and its claims reused until it expires, while expiry, revocation and the
signing key are still checked at every request, and any other token text is verified
afresh."""

from __future__ import annotations

from typing import Any

import pytest
from auth_helpers import Client, StepClock

from huitong.access import AuthService
from huitong.access.keys import SignatureInvalid
from huitong.access.verified_tokens import VerifiedTokens


@pytest.fixture
def feed(service: AuthService) -> str:
    _, secret = service.clients.add("confidential", client_id="feed", scopes="system/*.rs")
    assert secret is not None
    return secret


def _token(http: Client, secret: str) -> str:
    resp = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                     auth=("feed", secret))  # fmt: skip
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def _who(http: Client, token: str) -> Any:
    return http.get("/fhir/whoami", headers={"Authorization": f"Bearer {token}"})


class _Counted:
    """Counts the full signature checks (SigningKeys.verify) a service makes."""

    def __init__(self, service: AuthService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = service.keys.verify

        def verify(token: str, *, typ: str | None = None) -> tuple[dict[str, Any], str]:
            self.calls += 1
            return real(token, typ=typ)

        monkeypatch.setattr(service.keys, "verify", verify)


def test_a_token_is_verified_once_then_taken_from_the_cache(
    http: Client, service: AuthService, feed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _token(http, feed)
    counted = _Counted(service, monkeypatch)
    for _ in range(3):
        assert _who(http, token).json()["client"] == "feed"
    assert counted.calls == 1  # without the cache: one full check per request


def test_a_cached_token_still_fails_after_expiry(
    http: Client, service: AuthService, feed: str, clock: StepClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    token = _token(http, feed)
    counted = _Counted(service, monkeypatch)
    assert _who(http, token).status_code == 200
    clock.advance(300 - 1)  # one second before exp: still good, from the cache
    assert _who(http, token).status_code == 200
    assert counted.calls == 1
    clock.advance(1 + 5)  # exp plus the leeway
    resp = _who(http, token)
    assert resp.status_code == 401 and "已过期" in resp.json()["error"]
    assert len(service.verified_access_tokens) == 0  # dropped, and not kept again


def test_a_cached_token_still_fails_after_revocation(
    http: Client, service: AuthService, feed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _token(http, feed)
    counted = _Counted(service, monkeypatch)
    assert _who(http, token).status_code == 200
    assert counted.calls == 1
    assert http.post("/oauth/revoke", data={"token": token}, auth=("feed", feed)).status_code == 200
    counted.calls = 0  # (the revocation endpoint checks the token itself)
    resp = _who(http, token)
    assert resp.status_code == 401 and "revoked" in resp.json()["error"]
    assert counted.calls == 0  # the cached claims were used: the token row refused it


def test_a_token_with_another_signature_is_not_taken_from_the_cache(
    http: Client, service: AuthService, feed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, other = _token(http, feed), _token(http, feed)
    counted = _Counted(service, monkeypatch)
    assert _who(http, token).status_code == 200
    # the same header and claims with the signature of another token
    forged = token.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]
    assert forged != token
    resp = _who(http, forged)
    assert resp.status_code == 401 and "无效" in resp.json()["error"]
    assert counted.calls == 2  # checked in full, and refused
    resp = _who(http, forged)  # a refused token is never kept
    assert resp.status_code == 401 and counted.calls == 3


def test_a_cached_token_fails_once_its_key_is_retired(
    http: Client, service: AuthService, feed: str
) -> None:
    token = _token(http, feed)
    assert _who(http, token).status_code == 200
    service.keys.rotate()  # its key becomes "previous": still accepted
    assert _who(http, token).status_code == 200
    service.keys.rotate()  # ... and now retired
    resp = _who(http, token)
    assert resp.status_code == 401 and "无效" in resp.json()["error"]


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = VerifiedTokens(max_entries=2)
    checked: list[str] = []

    def check(token: str) -> tuple[dict[str, Any], str]:
        checked.append(token)
        return {"exp": 100, "jti": token}, "kid-1"

    def verify(token: str) -> dict[str, Any]:
        return cache.verify(token, 0, check, lambda kid: True)[0]

    for t in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" arrives
        verify(t)
    assert checked == ["a", "b", "c"] and len(cache) == 2
    verify("a")
    verify("b")
    assert checked == ["a", "b", "c", "b"]


def test_kept_claims_cannot_be_changed_by_a_caller() -> None:
    cache = VerifiedTokens()
    cache.verify("t", 0, lambda t: ({"exp": 100, "role": "system"}, "k"), lambda kid: True)
    first, _ = cache.verify("t", 0, lambda t: pytest.fail("checked again"), lambda kid: True)
    first["role"] = "admin"
    again, _ = cache.verify("t", 0, lambda t: pytest.fail("checked again"), lambda kid: True)
    assert again["role"] == "system"


def test_an_entry_ends_at_exp_plus_leeway_and_tokens_without_exp_are_not_kept() -> None:
    cache = VerifiedTokens(leeway_us=5_000_000)
    cache.put("t", {"exp": 100}, "k", 0)
    assert cache.get("t", 104_999_999) is not None
    assert cache.get("t", 105_000_000) is None
    cache.put("late", {"exp": 100}, "k", 105_000_000)  # refused anyway: not kept
    cache.put("no-exp", {"jti": "x"}, "k", 0)
    cache.put("bool-exp", {"exp": True}, "k", 0)
    assert len(cache) == 0


def test_a_failed_check_is_not_kept() -> None:
    cache = VerifiedTokens()

    def refuse(token: str) -> tuple[dict[str, Any], str]:
        raise SignatureInvalid("bad signature")

    with pytest.raises(SignatureInvalid):
        cache.verify("t", 0, refuse, lambda kid: True)
    assert len(cache) == 0

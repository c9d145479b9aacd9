"""Argon2id password hashes, TOTP and PKCE S256."""

from __future__ import annotations

import base64
import hashlib

import pytest
from argon2 import PasswordHasher

from huitong.access import (
    hash_password,
    needs_rehash,
    new_totp_secret,
    pkce_challenge,
    totp_code,
    totp_uri,
    verify_password,
    verify_pkce,
    verify_totp,
)

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only


def test_password_round_trip() -> None:
    stored = hash_password("correct horse 马", FAST)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse 马", FAST)
    assert not verify_password(stored, "correct horse", FAST)
    assert not verify_password("not-a-hash", "x", FAST)
    assert hash_password("same", FAST) != hash_password("same", FAST)  # salted


def test_rehash_when_parameters_change() -> None:
    stored = hash_password("pw", FAST)
    assert not needs_rehash(stored, FAST)
    assert needs_rehash(stored, PasswordHasher(time_cost=2, memory_cost=8, parallelism=1))
    with pytest.raises(ValueError):
        hash_password("", FAST)


# RFC 6238 Appendix B: the SHA-1 secret "12345678901234567890", 8 digits; Huitong uses 6,
# which are the last 6 digits of the same HOTP value.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("at", "rfc_code"),
    [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"),
     (2000000000, "69279037")],
)  # fmt: skip
def test_totp_matches_rfc6238_vectors(at: int, rfc_code: str) -> None:
    assert totp_code(RFC_SECRET, at) == rfc_code[-6:]


def test_totp_window_and_replay() -> None:
    secret = new_totp_secret()
    assert len(base64.b32decode(secret)) == 20
    at = 1_700_000_000
    code = totp_code(secret, at)
    step = verify_totp(secret, code, at)
    assert step == at // 30
    assert verify_totp(secret, code, at + 30) == step  # one step of drift
    assert verify_totp(secret, code, at + 95) is None  # too late
    assert verify_totp(secret, code, at, last_step=step) is None  # used once already
    assert verify_totp(secret, "12345", at) is None and verify_totp(secret, "abcdef", at) is None
    uri = totp_uri(secret, "dr.li@example.org")
    assert uri.startswith("otpauth://totp/Huitong:") and f"secret={secret}" in uri


# RFC 7636 Appendix B
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_rfc7636_vector() -> None:
    assert pkce_challenge(RFC_VERIFIER) == RFC_CHALLENGE
    assert verify_pkce(RFC_VERIFIER, RFC_CHALLENGE, "S256")


@pytest.mark.parametrize(
    ("verifier", "challenge", "method"),
    [
        (RFC_VERIFIER, RFC_VERIFIER, "plain"),  # plain is refused even when it "matches"
        (RFC_VERIFIER, RFC_CHALLENGE, "plain"),
        (RFC_VERIFIER[:-1] + "Y", RFC_CHALLENGE, "S256"),
        ("short", RFC_CHALLENGE, "S256"),
        ("a" * 129, RFC_CHALLENGE, "S256"),
        (RFC_VERIFIER + "!", RFC_CHALLENGE, "S256"),
        (RFC_VERIFIER, RFC_CHALLENGE + "=", "S256"),
    ],
)
def test_pkce_refusals(verifier: str, challenge: str, method: str) -> None:
    assert not verify_pkce(verifier, challenge, method)


def test_pkce_challenge_is_base64url_sha256() -> None:
    v = "A" * 43
    expected = base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=")
    assert pkce_challenge(v) == expected.decode()
    with pytest.raises(ValueError):
        pkce_challenge("bad verifier with spaces and long enough to pass length")

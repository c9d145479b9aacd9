"""Authorization codes — RFC 6749 §4.1.2, bound to a PKCE S256 challenge (RFC 7636).

A code is stored as its SHA-256 digest, lives ``AuthSettings.code_seconds`` (a minute by
default) and is redeemed once: :meth:`CodeStore.claim` marks it used atomically, so two
concurrent redemptions cannot both win. Presenting a used code again is an attack signal
(§4.1.2: "the authorization server MUST deny the request and SHOULD revoke … all tokens
previously issued based on that authorization code"): the claim reports it with the token
family the first redemption started, and the caller revokes that family.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from huitong.clock import Clock
from huitong.store.repository import Repository

__all__ = ["AuthorizationCode", "CodeClaim", "CodeStore"]


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """A redeemable code (what Authlib's grant and PKCE extension read)."""

    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    launch_patient: str | None
    auth_time: int  # µs
    amr: tuple[str, ...]
    code_hash: str
    family_id: str = ""

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time // 1_000_000


@dataclass(frozen=True, slots=True)
class CodeClaim:
    """The result of presenting a code: ``code`` when it was fresh and is now used;
    ``reused_family`` when it had been redeemed before (revoke that family)."""

    code: AuthorizationCode | None = None
    reused_family: str | None = None


_COLUMNS = (
    "client_id, user_id, redirect_uri, scope, code_challenge, challenge_method, nonce, "
    "launch_patient, auth_time, amr, code_hash"
)


def _code(row: Sequence[Any], family_id: str) -> AuthorizationCode:
    return AuthorizationCode(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], int(row[8]),
        tuple(orjson.loads(row[9] or "[]")), row[10], family_id,
    )


class CodeStore:
    def __init__(self, repo: Repository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    def save(
        self, code: str, *, client_id: str, user_id: str, redirect_uri: str, scope: str,
        code_challenge: str, code_challenge_method: str, nonce: str | None,
        launch_patient: str | None, auth_time: int, amr: Sequence[str], lifetime_us: int,
    ) -> None:
        now = self.clock()
        with self.repo.transaction() as tx:
            # expired codes are useless; keep used ones for a day to recognise reuse
            tx.execute("DELETE FROM auth_codes WHERE expires_at < ?", (now - 86_400_000_000,))
            tx.execute(
                f"INSERT INTO auth_codes ({_COLUMNS}, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method,
                 nonce, launch_patient, auth_time, orjson.dumps(list(amr)).decode(),
                 _hash(code), now + lifetime_us),
            )

    def claim(self, code: str, client_id: str, family_id: str) -> CodeClaim:
        """Redeem ``code`` for ``client_id``: fresh, unexpired and issued to that client,
        or nothing. The tokens it yields form ``family_id``, recorded with the claim so a
        second presentation, however soon, returns the family to revoke."""
        now = self.clock()
        key = _hash(code)
        with self.repo.transaction() as tx:
            rows = tx.execute(
                f"UPDATE auth_codes SET used_at = ?, family_id = ? WHERE code_hash = ? AND "
                f"client_id = ? AND used_at IS NULL AND expires_at > ? RETURNING {_COLUMNS}",
                (now, family_id, key, client_id, now),
            )
            if rows:
                return CodeClaim(code=_code(rows[0], family_id))
            used = tx.execute(
                "SELECT family_id FROM auth_codes WHERE code_hash = ? AND used_at IS NOT NULL",
                (key,),
            )
        if used and used[0][0]:
            return CodeClaim(reused_family=used[0][0])
        return CodeClaim()

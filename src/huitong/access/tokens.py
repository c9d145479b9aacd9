"""Issued tokens, token families, revocation, and the replay store for client assertions.

- Access tokens are short-lived JWTs (signed by :mod:`huitong.access.keys`); each is recorded
  by its ``jti`` so that revocation takes effect before it expires.
- Refresh tokens are random strings stored as SHA-256 digests. Every use rotates them: the
  presented token is marked ``rotated`` atomically and a new one issued in the same *family*
  (every token descended from one grant). Presenting a rotated token again means it leaked
  (OAuth 2.0 Security BCP, RFC 9700 §4.14.2): the whole family is revoked.
- Revoking a refresh token revokes its family (RFC 7009 §2.1); revoking an access token,
  that token.
- The jti of each accepted client assertion is kept until the assertion expires, so a
  replayed assertion is refused (RFC 7523 §3, SMART Backend Services).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from huitong.clock import Clock
from huitong.store.repository import Repository

__all__ = ["RefreshClaim", "StoredToken", "TokenContext", "TokenStore", "token_digest"]

_DAY_US = 86_400_000_000


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredToken:
    """One issued token as recorded (also Authlib's ``TokenMixin`` for refresh,
    introspection and revocation). ``checked_at`` is the time it was loaded."""

    jti: str
    kind: str  # "access" | "refresh"
    family_id: str
    client_id: str
    user_id: str | None
    scope: str
    launch_patient: str | None
    issued_at: int
    expires_at: int
    rotated_at: int | None
    revoked_at: int | None
    checked_at: int

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, (self.expires_at - self.issued_at) // 1_000_000)

    def is_expired(self) -> bool:
        return self.expires_at <= self.checked_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or (self.kind == "refresh" and
                                                self.rotated_at is not None)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RefreshClaim:
    """``token``: the presented refresh token, now rotated; ``reused_family``: it had been
    rotated before (the family has been revoked by :meth:`TokenStore.claim_refresh`)."""

    token: StoredToken | None = None
    reused_family: str | None = None


@dataclass(frozen=True, slots=True)
class TokenContext:
    """What request authentication needs besides the JWT: is the token still good, and the
    user's current links (so disabling a user or relinking records acts at once)."""

    revoked: bool
    client_present: bool
    user_disabled: bool
    patient_ids: tuple[str, ...]


_COLUMNS = (
    "jti, kind, family_id, client_id, user_id, scope, launch_patient, issued_at, expires_at, "
    "rotated_at, revoked_at"
)


def _token(row: Sequence[Any], now: int) -> StoredToken:
    return StoredToken(*row, checked_at=now)


class TokenStore:
    def __init__(self, repo: Repository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    def record(
        self, *, family_id: str, client_id: str, user_id: str | None, scope: str,
        launch_patient: str | None, access_jti: str, access_expires_at: int,
        refresh_jti: str | None = None, refresh_token: str | None = None,
        refresh_expires_at: int | None = None,
    ) -> None:
        """Record an access token (and the refresh token issued with it) in one transaction."""
        now = self.clock()
        rows: list[tuple[Any, ...]] = [
            (access_jti, "access", None, family_id, client_id, user_id, scope, launch_patient,
             now, access_expires_at),
        ]
        if refresh_token is not None:
            rows.append((refresh_jti, "refresh", token_digest(refresh_token), family_id,
                         client_id, user_id, scope, launch_patient, now, refresh_expires_at))
        with self.repo.transaction() as tx:
            for row in rows:
                tx.execute(
                    "INSERT INTO auth_tokens (jti, kind, token_hash, family_id, client_id, "
                    "user_id, scope, launch_patient, issued_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )

    def claim_refresh(self, refresh_token: str, client_id: str) -> RefreshClaim:
        """Rotate ``refresh_token`` if it is current, unexpired, unrevoked and the client's.
        A rotated one presented again revokes its family and reports it."""
        now = self.clock()
        digest = token_digest(refresh_token)
        with self.repo.transaction() as tx:
            rows = tx.execute(
                f"UPDATE auth_tokens SET rotated_at = ? WHERE token_hash = ? AND kind = 'refresh' "
                f"AND client_id = ? AND rotated_at IS NULL AND revoked_at IS NULL "
                f"AND expires_at > ? RETURNING {_COLUMNS}",
                (now, digest, client_id, now),
            )
            if rows:
                return RefreshClaim(token=_token(rows[0], now))
            seen = tx.execute(
                "SELECT family_id FROM auth_tokens WHERE token_hash = ? AND kind = 'refresh' "
                "AND rotated_at IS NOT NULL",
                (digest,),
            )
            if seen:
                self._revoke_family(tx, seen[0][0], "refresh-reuse", now)
                return RefreshClaim(reused_family=seen[0][0])
        return RefreshClaim()

    @staticmethod
    def _revoke_family(tx: Any, family_id: str, reason: str, now: int) -> None:
        tx.execute(
            "UPDATE auth_tokens SET revoked_at = ?, revoked_reason = ? "
            "WHERE family_id = ? AND revoked_at IS NULL",
            (now, reason, family_id),
        )

    def revoke_family(self, family_id: str, reason: str) -> None:
        with self.repo.transaction() as tx:
            self._revoke_family(tx, family_id, reason, self.clock())

    def revoke(self, token: StoredToken, reason: str = "revoked") -> None:
        """Revoke an access token, or a refresh token with its whole family."""
        now = self.clock()
        with self.repo.transaction() as tx:
            if token.kind == "refresh":
                self._revoke_family(tx, token.family_id, reason, now)
            else:
                tx.execute(
                    "UPDATE auth_tokens SET revoked_at = ?, revoked_reason = ? "
                    "WHERE jti = ? AND revoked_at IS NULL",
                    (now, reason, token.jti),
                )

    def by_jti(self, jti: str) -> StoredToken | None:
        rows = self.repo.query(f"SELECT {_COLUMNS} FROM auth_tokens WHERE jti = ?", (jti,))
        return _token(rows[0], self.clock()) if rows else None

    def by_refresh_token(self, refresh_token: str) -> StoredToken | None:
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM auth_tokens WHERE token_hash = ? AND kind = 'refresh'",
            (token_digest(refresh_token),),
        )
        return _token(rows[0], self.clock()) if rows else None

    def context(self, jti: str) -> TokenContext | None:
        """One query: the access token's revocation, its client, its user's state."""
        rows = self.repo.query(
            "SELECT t.revoked_at, c.client_id, u.disabled, u.patient_ids, t.user_id "
            "FROM auth_tokens t "
            "LEFT JOIN auth_clients c ON c.client_id = t.client_id AND c.disabled = 0 "
            "LEFT JOIN auth_users u ON u.id = t.user_id "
            "WHERE t.jti = ? AND t.kind = 'access'",
            (jti,),
        )
        if not rows:
            return None
        revoked_at, client, disabled, patient_ids, user_id = rows[0]
        return TokenContext(
            revoked=revoked_at is not None,
            client_present=client is not None,
            user_disabled=user_id is not None and (disabled is None or bool(disabled)),
            patient_ids=tuple(orjson.loads(patient_ids)) if patient_ids else (),
        )

    def remember_assertion(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a client assertion's ``jti`` until ``expires_at`` (µs); False when the
        client already used it (a replay)."""
        now = self.clock()
        with self.repo.transaction() as tx:
            tx.execute("DELETE FROM auth_assertion_jti WHERE expires_at < ?", (now,))
            rows = tx.execute(
                "INSERT INTO auth_assertion_jti (client_id, jti, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING jti",
                (client_id, jti, expires_at),
            )
        return bool(rows)

    def purge(self) -> int:
        """Delete token rows expired for more than a day (revocation no longer matters:
        the JWT's ``exp`` already refuses them). Returns how many."""
        cutoff = self.clock() - _DAY_US
        with self.repo.transaction() as tx:
            gone = tx.execute("DELETE FROM auth_tokens WHERE expires_at < ? RETURNING jti",
                              (cutoff,))  # fmt: skip
        return len(gone)

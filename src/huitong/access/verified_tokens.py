"""Signature checks of access tokens, kept until the token expires (issue 5: the JWT
signature check was the larger part of every authenticated request's CPU).

A bearer token is presented again and again for its short life; checking its ES256/RS256
signature each time gives the same answer each time, so the first answer — the claims — is
kept, keyed by the exact token text: a token differing in any character (another
signature, header or payload) is a different key and is verified afresh. What may change
during a token's life is still checked at every request by the caller
(``server/authn.py``): ``exp``/``nbf``/``iat`` against the clock, ``iss``/``aud``, the
token row (revocation, client, user) and, here, that the key which signed it is still one
the server verifies with (a rotation that retires it ends the kept answers with it).

Entries live until the token's ``exp`` (plus the leeway the caller allows, after which the
token cannot pass anyway), and at most :data:`MAX_ENTRIES` are kept (least recently used
go first), so memory stays bounded whatever tokens arrive. Only tokens that verified are
kept: a forged token costs a full check every time, as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["MAX_ENTRIES", "VerifiedToken", "VerifiedTokens"]

# A few thousand live tokens per server process; ~1-2 KB each with the claims.
MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature verified: its claims (read-only), the ``kid`` that signed
    it, and the instant (µs, the service's clock) after which it is dropped."""

    claims: MappingProxyType[str, Any]
    kid: str
    drop_at: int


class VerifiedTokens:
    """A bounded LRU of verified tokens (thread-safe). ``leeway_us``: how long after ``exp``
    the caller still accepts a token (an entry is kept that long, never longer)."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, leeway_us: int = 0) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.leeway_us = leeway_us
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: int) -> VerifiedToken | None:
        """The kept check of exactly ``token``, or None (verify it). An entry past its
        token's expiry is dropped, not returned."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if now >= entry.drop_at:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry

    def put(self, token: str, claims: dict[str, Any], kid: str, now: int) -> None:
        """Keep ``token``'s verified ``claims`` until its ``exp`` (+ leeway). A token
        without a numeric ``exp`` is not kept (nothing bounds how long it would stay), nor
        one already past that instant at ``now`` (it is refused anyway)."""
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return
        drop_at = int(exp * 1_000_000) + self.leeway_us
        if now >= drop_at:
            return
        # a private copy: the caller may not change what later requests are given
        entry = VerifiedToken(MappingProxyType(dict(claims)), kid, drop_at)
        with self._lock:
            self._entries[token] = entry
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def verify(
        self,
        token: str,
        now: int,
        check: Callable[[str], tuple[dict[str, Any], str]],
        key_known: Callable[[str], bool],
    ) -> tuple[dict[str, Any], str]:
        """The claims and ``kid`` of ``token``: kept ones while the key ``kid`` is still
        known (``key_known``), else ``check(token)`` (the full verification, which raises
        for a token that does not verify) and kept for later requests."""
        entry = self.get(token, now)
        if entry is not None:
            if key_known(entry.kid):
                return dict(entry.claims), entry.kid
            self.discard(token)
        claims, kid = check(token)
        self.put(token, claims, kid, now)
        return claims, kid

    def discard(self, token: str) -> None:
        with self._lock:
            self._entries.pop(token, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

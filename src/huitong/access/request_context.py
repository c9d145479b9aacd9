"""Everything request authentication reads from the database, in one statement.

For a bearer token (``server/authn.py``) the server needs: is the token still good (not
revoked, its client registered, its user enabled) and the user's current patient links; for
a clinician also their open share-code grants and break-glass sessions, and — where the
server keeps their access facts (access/facts_cache.py) — whether anything those facts rest
on changed since they were read. Each was its own round trip; now one ``UNION ALL`` answers
all of them (rows tagged ``t`` token, ``g`` grant, ``b`` break-glass, ``c`` change), so a
clinician's request costs the database what any other authenticated request costs.
Everything is read at every request: a revocation, a withdrawal, a grant's expiry or a
disabled account acts on the very next request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from huitong.access.facts_cache import change_check_sql
from huitong.access.principal import BreakGlass, ShareGrant
from huitong.access.tokens import TokenContext
from huitong.store.repository import Repository

__all__ = ["ENDED_GLASS_KEPT_US", "RequestContext", "load_request_context"]

# Ended break-glass sessions stay on the principal this long, so a read after the window
# says "your emergency access ended at …" instead of a bare "no relationship".
ENDED_GLASS_KEPT_US = 24 * 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class RequestContext:
    """``token`` None: no such access token. ``changed``: the facts checked are stale."""

    token: TokenContext | None
    break_glass: tuple[BreakGlass, ...] = ()
    share_grants: tuple[ShareGrant, ...] = ()
    changed: bool = False


_TOKEN = (
    "SELECT 't', c.client_id, u.patient_ids, t.user_id, CAST(NULL AS TEXT), t.revoked_at, "
    "CAST(u.disabled AS BIGINT) FROM auth_tokens t "
    "LEFT JOIN auth_clients c ON c.client_id = t.client_id AND c.disabled = 0 "
    "LEFT JOIN auth_users u ON u.id = t.user_id "
    "WHERE t.jti = ? AND t.kind = 'access'"
)
_GRANTS = (
    "SELECT 'g', id, patient_id, resource_types, labels, grant_until, CAST(NULL AS BIGINT) "
    "FROM access_share_codes WHERE redeemed_by = ? AND grant_until > ? AND revoked_at IS NULL"
)
_GLASS = (
    "SELECT 'b', id, patient_id, reason, '', until, started_at "
    "FROM access_break_glass WHERE user_id = ? AND until > ?"
)


def load_request_context(
    repo: Repository,
    jti: str,
    *,
    clinician: str | None = None,
    now: int = 0,
    check: tuple[str, Sequence[str]] | None = None,
) -> RequestContext:
    """The token ``jti``'s state; for the clinician user id ``clinician`` also their grants
    and break-glass sessions (open at ``now``, or ended within a day); with ``check``
    (a pg_snapshot text and change scopes, PostgreSQL) also whether a change of those
    scopes committed outside that snapshot."""
    parts, params = [_TOKEN], [jti]
    if clinician is not None:
        parts += [_GRANTS, _GLASS]
        params += [clinician, now, clinician, now - ENDED_GLASS_KEPT_US]
    if check is not None:
        snapshot, scopes = check
        parts.append(
            "SELECT 'c', CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
            "CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) "
            f"WHERE {change_check_sql()}"
        )
        params += [orjson.dumps(list(scopes)).decode(), snapshot, snapshot]
    # Planned once where the engine can (the same shape at every request, lookups by key).
    lookup = getattr(repo, "lookup_query", None) or repo.query
    rows = lookup(" UNION ALL ".join(parts), params)
    return _context(rows)


def _context(rows: Sequence[Sequence[Any]]) -> RequestContext:
    token = None
    glass: list[BreakGlass] = []
    grants: list[ShareGrant] = []
    changed = False
    for kind, a, b, c, d, n1, n2 in sorted(rows, key=lambda r: (r[0], r[1] or "")):
        if kind == "t":
            token = TokenContext(
                revoked=n1 is not None,
                client_present=a is not None,
                user_disabled=c is not None and (n2 is None or bool(n2)),
                patient_ids=tuple(orjson.loads(b)) if b else (),
            )
        elif kind == "g":
            grants.append(ShareGrant(b, a, int(n1), frozenset(orjson.loads(c)),
                                     frozenset(orjson.loads(d))))  # fmt: skip
        elif kind == "b":
            glass.append(BreakGlass(b, c, int(n2), int(n1)))
        elif kind == "c":
            changed = True
    return RequestContext(token, tuple(glass), tuple(grants), changed)

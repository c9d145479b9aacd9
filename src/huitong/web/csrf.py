"""Per-session CSRF tokens for the pages' forms (synchronizer tokens keyed by a secret).

A browser session is a random id in an HttpOnly, SameSite=Strict cookie; the token a form
carries is HMAC-SHA256(secret, session id), so the server keeps no token table and a token
from one session is worthless in another.
https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = ["SESSION_COOKIE", "csrf_token", "is_session_id", "new_session_id", "valid_csrf"]

SESSION_COOKIE = "huitong_session"
_SESSION_RE = re.compile(r"[A-Za-z0-9_\-]{32,64}")


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def is_session_id(value: str | None) -> bool:
    return value is not None and _SESSION_RE.fullmatch(value) is not None


def csrf_token(secret: bytes, session_id: str) -> str:
    return hmac.new(secret, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def valid_csrf(secret: bytes, session_id: str | None, token: str | None) -> bool:
    """Whether ``token`` is this session's (constant-time comparison)."""
    if not is_session_id(session_id) or not token:
        return False
    assert session_id is not None
    return hmac.compare_digest(csrf_token(secret, session_id), token)

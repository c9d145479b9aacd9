"""What the authorization server reports to the audit log: sign-ins, failed sign-ins,
tokens issued, refreshed and revoked, and detected attacks (refresh-token or code reuse,
replayed client assertions).

Events carry ids and reason codes only — never a password, a code, a token or a secret.
The server calls an ``on_event`` callback with each; the audit log decides what to keep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AuthEvent", "EventSink", "discard_event"]


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """``kind``: ``login``, ``token``, ``revoke``; ``outcome``: ``success`` or
    ``failure``; ``reason`` names the rule (``bad-credentials``, ``locked``,
    ``totp-failed``, ``refresh-reuse``, ``code-reuse``, ``assertion-replay``…)."""

    kind: str
    outcome: str
    at: int
    reason: str = ""
    user_id: str | None = None
    client_id: str | None = None
    grant_type: str | None = None
    jti: str | None = None


EventSink = Callable[[AuthEvent], None]


def discard_event(event: AuthEvent) -> None:
    """The default sink: events go nowhere until the audit log subscribes."""

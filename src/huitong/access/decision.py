"""An access decision as data: allowed or not, why, and what the store must restrict."""

from __future__ import annotations

from dataclasses import dataclass

from huitong.access.constraints import Constraint

__all__ = ["Decision", "Reason"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why (STYLE principle 8). ``kind`` uses the audit log's basis kinds (``role``,
    ``consent``, ``break-glass``, ``share-code``, ``referral``, ``scope``, ``denied``) so the
    audit entry records it as it is; ``code`` names the rule; ``ref`` is the consent / share
    code / referral id; break-glass adds ``justification`` and ``until``."""

    kind: str
    code: str
    en: str
    zh: str
    ref: str | None = None
    justification: str | None = None
    until: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """``allowed`` with its ``reason``; when allowed, ``constraint`` says which rows the
    request may touch (None when denied: the request must not run at all, so a 403 reveals
    nothing about what exists)."""

    allowed: bool
    reason: Reason
    constraint: Constraint | None = None

    def __bool__(self) -> bool:
        return self.allowed

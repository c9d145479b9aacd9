"""What the consent services report to the audit log: consent changes, break-glass, share
codes issued and redeemed (issue 5, "Audit").

Each service takes an ``on_event`` callback, called with a :class:`ConsentEvent` and the
write transaction the change happens in (None when there is none), so the audit log can
append its entry in the same database transaction as the change. Events carry ids, kinds and
the stated reason only — never a share code itself, a token or clinical content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ConsentEvent", "ConsentEventSink", "discard_consent_event"]

EventKind = Literal[
    "consent-change", "break-glass", "share-code-issued", "share-code-redeemed",
    "share-code-revoked",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """``kind``; ``action`` says what happened (``create``, ``update``, ``delete``,
    ``revoke``, ``open``, ``close``, ``issue``, ``redeem``); ``actor_*`` who did it (user or
    client id, role, organization); ``patient_id`` whose record; ``reason`` the stated
    justification (break-glass) or the rule; ``resource_ids`` e.g. ``Consent/c1``,
    ``share-code/<id>``, ``break-glass/<id>``; ``until`` the end of the access it opens."""

    kind: EventKind
    action: str
    at: int
    patient_id: str | None
    actor_id: str | None = None
    actor_role: str | None = None
    actor_organization: str | None = None
    reason: str = ""
    resource_ids: tuple[str, ...] = ()
    until: int | None = None


ConsentEventSink = Callable[[ConsentEvent, Any], None]


def discard_consent_event(event: ConsentEvent, tx: Any = None) -> None:
    """The default sink: events go nowhere until the audit log subscribes."""

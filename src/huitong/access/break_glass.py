"""Break-the-glass: a clinician opens one patient's record in an emergency (issue 5).

The clinician states a reason (at least :data:`MIN_REASON_CHARS` characters); the session is
time-boxed (``HUITONG_BREAK_GLASS_HOURS``, 4 h by default) and may be closed earlier.
``server/authn.py`` loads the clinician's sessions onto
:attr:`~huitong.access.principal.Principal.break_glass` at every request, where the policy
opens that one patient (sensitive data included: it is an emergency) until the window ends.
Every opening is reported to ``on_event`` for the audit log, and the patient can list who
broke the glass on their record, when, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from huitong.access.consent_events import (
    ConsentEvent,
    ConsentEventSink,
    discard_consent_event,
)
from huitong.access.principal import Principal, Role
from huitong.clock import Clock, IdFactory, new_uuid
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository

__all__ = [
    "DEFAULT_HOURS",
    "MIN_REASON_CHARS",
    "BreakGlassService",
    "BreakGlassSession",
    "require_clinician_user",
]

DEFAULT_HOURS = 4
MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 1000
_HOUR = 3600 * 1_000_000


def require_clinician_user(principal: Principal) -> str:
    """The user id of a signed-in clinician; FORBIDDEN for anyone else (a backend client
    has no person to hold accountable)."""
    if principal.role is not Role.CLINICIAN or not principal.user_id:
        raise FhirError(
            Category.FORBIDDEN,
            "Only a signed-in clinician can do this / 只有已登录的临床医生可以执行此操作",
        )
    return principal.user_id


@dataclass(frozen=True, slots=True)
class BreakGlassSession:
    id: str
    patient_id: str
    user_id: str
    user_name: str | None
    practitioner_id: str | None
    organization_id: str | None
    reason: str
    started_at: int
    until: int
    closed_at: int | None

    def active(self, now: int) -> bool:
        return self.started_at <= now < self.until


_COLUMNS = (
    "b.id, b.patient_id, b.user_id, u.display_name, b.practitioner_id, b.organization_id, "
    "b.reason, b.started_at, b.until, b.closed_at"
)


def _session(row: Sequence[Any]) -> BreakGlassSession:
    return BreakGlassSession(
        row[0],
        row[1],
        row[2],
        row[3] or None,
        row[4],
        row[5],
        row[6],
        int(row[7]),
        int(row[8]),
        None if row[9] is None else int(row[9]),
    )


class BreakGlassService:
    """Open, close and list break-glass sessions over ``repo``'s ``access_break_glass``."""

    def __init__(
        self, repo: Repository, *, clock: Clock | None = None, new_id: IdFactory | None = None,
        hours: int = DEFAULT_HOURS, on_event: ConsentEventSink = discard_consent_event,
    ) -> None:  # fmt: skip
        if hours < 1:
            raise ValueError("break-glass sessions last at least an hour")
        self.repo = repo
        self.clock: Clock = clock or repo.clock
        self.new_id: IdFactory = new_id or new_uuid
        self.hours = hours
        self.on_event = on_event

    def open(self, principal: Principal, patient_id: str, reason: str) -> BreakGlassSession:
        """Open ``patient_id`` for the signed-in clinician for :attr:`hours`, with the
        stated ``reason``. NOT_FOUND when there is no such patient (break-glass reaches any
        patient, so saying whether one exists reveals nothing more)."""
        user = require_clinician_user(principal)
        text = " ".join(reason.split()) if isinstance(reason, str) else ""
        if len(text) < MIN_REASON_CHARS:
            raise FhirError(
                Category.INVALID,
                f"State the emergency: a reason of at least {MIN_REASON_CHARS} characters is "
                f"required / 请说明紧急情况：原因至少需要 {MIN_REASON_CHARS} 个字符",
            )
        if len(text) > MAX_REASON_CHARS:
            raise FhirError(
                Category.INVALID,
                f"The reason is longer than {MAX_REASON_CHARS} characters / "
                f"原因超过 {MAX_REASON_CHARS} 个字符",
            )
        if principal.scopes is not None and not principal.scopes.allows("read", "Patient"):
            raise FhirError(
                Category.FORBIDDEN,
                "The access token's scopes do not permit reading patients / "
                "访问令牌的权限范围不允许读取患者",
            )
        if not isinstance(patient_id, str) or not patient_id:
            raise FhirError(Category.INVALID, "'patient' is required / 缺少“patient”")
        now = self.clock()
        sid = self.new_id()
        until = now + self.hours * _HOUR
        with self.repo.transaction() as tx:
            found = tx.read("Patient", patient_id)
            if found is None or found.deleted:
                raise FhirError(Category.NOT_FOUND, "No such patient / 没有该患者")
            tx.execute(
                "INSERT INTO access_break_glass (id, user_id, practitioner_id, "
                "organization_id, patient_id, reason, started_at, until) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, user, principal.practitioner_id, principal.organization_id, patient_id,
                 text, now, until),
            )  # fmt: skip
            self.on_event(ConsentEvent(
                "break-glass", "open", now, patient_id, user, principal.role.value,
                principal.organization_id, text, (f"break-glass/{sid}",), until,
            ), tx)  # fmt: skip
        return BreakGlassSession(sid, patient_id, user, None, principal.practitioner_id,
                                 principal.organization_id, text, now, until, None)  # fmt: skip

    def close(self, principal: Principal, session_id: str) -> BreakGlassSession:
        """The clinician ends their own session early (emergency over)."""
        user = require_clinician_user(principal)
        now = self.clock()
        with self.repo.transaction() as tx:
            rows = tx.execute(
                "UPDATE access_break_glass SET until = ?, closed_at = ? "
                "WHERE id = ? AND user_id = ? AND until > ? RETURNING patient_id",
                (now, now, session_id, user, now),
            )
            if rows:
                self.on_event(ConsentEvent(
                    "break-glass", "close", now, rows[0][0], user, principal.role.value,
                    principal.organization_id, "", (f"break-glass/{session_id}",), now,
                ), tx)  # fmt: skip
        found = [s for s in self.for_user(user) if s.id == session_id]
        if not found:
            raise FhirError(Category.NOT_FOUND, "No such break-glass session / 没有该紧急访问记录")
        return found[0]

    def for_user(self, user_id: str) -> list[BreakGlassSession]:
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM access_break_glass b LEFT JOIN auth_users u "
            "ON u.id = b.user_id WHERE b.user_id = ? ORDER BY b.started_at DESC, b.id",
            (user_id,),
        )
        return [_session(r) for r in rows]

    def for_patients(self, patient_ids: Sequence[str]) -> list[BreakGlassSession]:
        """Who broke the glass on these patient records, newest first."""
        ids = sorted(set(patient_ids))
        if not ids:
            return []
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM access_break_glass b LEFT JOIN auth_users u "
            f"ON u.id = b.user_id WHERE b.patient_id IN ({', '.join('?' * len(ids))}) "
            "ORDER BY b.started_at DESC, b.id",
            ids,
        )
        return [_session(r) for r in rows]

"""People who sign in: users with a role, an Argon2id password hash, optional TOTP, and the
organization / practitioner / patient records they are linked to.

Stored in ``auth_users`` through the repository's component-SQL seam. A :class:`User` never
carries the password hash or the TOTP secret: those stay in the table and are read only by
:mod:`huitong.access.signin`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from huitong.access.passwords import PasswordHasher, hash_password
from huitong.access.principal import Role
from huitong.access.totp import new_totp_secret
from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository

__all__ = ["HUMAN_ROLES", "STAFF_ROLES", "AccountStore", "User"]

HUMAN_ROLES = frozenset(r for r in Role if r is not Role.SYSTEM)
STAFF_ROLES = HUMAN_ROLES - {Role.PATIENT}

_COLUMNS = (
    "id, username, display_name, role, organization_id, practitioner_id, patient_ids, "
    "disabled, totp_secret IS NOT NULL, created_at"
)


@dataclass(frozen=True, slots=True)
class User:
    """A user as the rest of Huitong sees it (no secrets). ``patient_ids`` are the Patient
    records of the person (patient role), first the one used as the SMART launch patient."""

    id: str
    username: str
    display_name: str
    role: Role
    organization_id: str | None
    practitioner_id: str | None
    patient_ids: tuple[str, ...]
    disabled: bool
    totp_enrolled: bool
    created_at: int

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def fhir_user(self) -> str | None:
        """The SMART ``fhirUser`` reference: the Practitioner, else the Patient record."""
        if self.practitioner_id:
            return f"Practitioner/{self.practitioner_id}"
        if self.role is Role.PATIENT and self.patient_ids:
            return f"Patient/{self.patient_ids[0]}"
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id, "username": self.username, "name": self.display_name,
            "role": str(self.role), "organization": self.organization_id,
            "practitioner": self.practitioner_id, "patients": list(self.patient_ids),
            "disabled": self.disabled, "totp": self.totp_enrolled,
        }


def user_from_row(row: Sequence[Any]) -> User:
    return User(
        id=row[0], username=row[1], display_name=row[2] or "", role=Role(row[3]),
        organization_id=row[4], practitioner_id=row[5],
        patient_ids=tuple(orjson.loads(row[6] or "[]")), disabled=bool(row[7]),
        totp_enrolled=bool(row[8]), created_at=int(row[9]),
    )


def _invalid(en: str, zh: str) -> FhirError:
    return FhirError(Category.INVALID, f"{en} / {zh}")


def _not_found(username: str) -> FhirError:
    return FhirError(Category.NOT_FOUND,
                     f"no user '{username}' / 没有用户“{username}”")  # fmt: skip


class AccountStore:
    """Users on the repository's database. Failures are :class:`FhirError` (INVALID,
    CONFLICT, NOT_FOUND) with bilingual messages."""

    def __init__(self, repo: Repository, clock: Clock, new_id: IdFactory,
                 hasher: PasswordHasher | None = None) -> None:  # fmt: skip
        self.repo = repo
        self.clock = clock
        self.new_id = new_id
        self.hasher = hasher or PasswordHasher()

    def add(
        self,
        username: str,
        password: str,
        role: Role | str,
        *,
        display_name: str = "",
        organization_id: str | None = None,
        practitioner_id: str | None = None,
        patient_ids: Sequence[str] = (),
    ) -> User:
        """Create a user. A patient needs at least one linked Patient record; a clinician
        an organization; the ``system`` role belongs to backend clients, not people."""
        username = username.strip()
        if not username or len(username) > 128 or any(c.isspace() for c in username):
            raise _invalid("A user name is 1-128 characters without spaces.",
                           "用户名为 1-128 个字符，不含空格。")  # fmt: skip
        try:
            role = Role(role)
        except ValueError:
            raise _invalid(f"Unknown role '{role}'.", f"未知角色“{role}”。") from None
        if role not in HUMAN_ROLES:
            raise _invalid("The system role is for backend clients, not users.",
                           "system 角色属于后台客户端，不能分配给用户。")  # fmt: skip
        if role is Role.PATIENT and not patient_ids:
            raise _invalid("A patient user needs at least one linked Patient record.",
                           "患者用户至少需要关联一条 Patient 记录。")  # fmt: skip
        if role is Role.CLINICIAN and not organization_id:
            raise _invalid("A clinician needs an organization.", "医生用户需要所属机构。")
        if len(password) < 8:
            raise _invalid("A password has at least 8 characters.", "密码至少 8 个字符。")
        if self.by_username(username) is not None:
            raise FhirError(Category.CONFLICT,
                            f"user '{username}' exists / 用户“{username}”已存在")  # fmt: skip
        now = self.clock()
        user_id = self.new_id()
        with self.repo.transaction() as tx:
            tx.execute(
                "INSERT INTO auth_users (id, username, display_name, role, password_hash, "
                "organization_id, practitioner_id, patient_ids, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, username, display_name, str(role), hash_password(password, self.hasher),
                 organization_id, practitioner_id,
                 orjson.dumps(list(dict.fromkeys(patient_ids))).decode(), now, now),
            )
        user = self.get(user_id)
        assert user is not None
        return user

    def get(self, user_id: str) -> User | None:
        rows = self.repo.query(f"SELECT {_COLUMNS} FROM auth_users WHERE id = ?", (user_id,))
        return user_from_row(rows[0]) if rows else None

    def by_username(self, username: str) -> User | None:
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM auth_users WHERE username = ?", (username,)
        )
        return user_from_row(rows[0]) if rows else None

    def require(self, username: str) -> User:
        user = self.by_username(username)
        if user is None:
            raise _not_found(username)
        return user

    def list(self) -> list[User]:
        rows = self.repo.query(f"SELECT {_COLUMNS} FROM auth_users ORDER BY username")
        return [user_from_row(r) for r in rows]

    def set_password(self, username: str, password: str) -> None:
        """Replace the password (and clear a lockout)."""
        if len(password) < 8:
            raise _invalid("A password has at least 8 characters.", "密码至少 8 个字符。")
        user = self.require(username)
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE auth_users SET password_hash = ?, failed_logins = 0, locked_until = NULL, "
                "updated_at = ? WHERE id = ?",
                (hash_password(password, self.hasher), self.clock(), user.id),
            )

    def enrol_totp(self, username: str) -> str:
        """Give the user a new TOTP secret and return it (shown once, as a QR code or text);
        from now on sign-in asks for a code."""
        user = self.require(username)
        secret = new_totp_secret()
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE auth_users SET totp_secret = ?, totp_last_step = NULL, updated_at = ? "
                "WHERE id = ?",
                (secret, self.clock(), user.id),
            )
        return secret

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        """Disable (or re-enable) a user. A disabled user cannot sign in, refresh, or use
        a token already issued (request authentication checks the flag)."""
        user = self.require(username)
        with self.repo.transaction() as tx:
            tx.execute(
                "UPDATE auth_users SET disabled = ?, updated_at = ? WHERE id = ?",
                (int(disabled), self.clock(), user.id),
            )
        return self.require(username)

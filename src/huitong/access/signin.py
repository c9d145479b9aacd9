"""Signing a person in: password (Argon2id), lockout after repeated failures, then a TOTP
code when the user has enrolled one (RFC 6238; each code accepted once).

The password step and the TOTP step are separate requests; between them the browser holds
a short-lived random *ticket* (stored hashed) that proves the password was right, so the
password is never sent twice nor kept anywhere. Results are data
(:class:`SignInResult`) with bilingual messages; nothing here renders a page.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from huitong.access.accounts import STAFF_ROLES, AccountStore, User
from huitong.access.auth_settings import AuthSettings
from huitong.access.events import AuthEvent, EventSink, discard_event
from huitong.access.passwords import hash_password, needs_rehash, verify_password
from huitong.access.principal import Role
from huitong.access.totp import verify_totp
from huitong.clock import Clock
from huitong.store.repository import Repository

__all__ = ["SignIn", "SignInOutcome", "SignInResult"]

_S = 1_000_000
_MAX_TOTP_ATTEMPTS = 5


class SignInOutcome(StrEnum):
    OK = "ok"
    TOTP_REQUIRED = "totp-required"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SignInResult:
    """``OK`` with the ``user`` and the authentication methods (``amr``: ``pwd``, ``otp``);
    ``TOTP_REQUIRED`` with a ``ticket`` for the second step; ``FAILED`` with ``reason``.
    ``en``/``zh`` is the message the person reads (empty on success)."""

    outcome: SignInOutcome
    user: User | None = None
    ticket: str | None = None
    amr: tuple[str, ...] = ()
    reason: str = ""
    en: str = ""
    zh: str = ""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


_BAD = ("bad-credentials", "The user name or password is wrong.", "用户名或密码错误。")
_LOCKED = ("locked", "Too many failed attempts; try again later.", "失败次数过多，请稍后再试。")
_DISABLED = ("disabled", "This account is disabled.", "该账户已停用。")
_NO_TOTP = (
    "totp-not-enrolled",
    "Staff accounts need a one-time-password app; ask an administrator to enrol you.",
    "工作人员账户须绑定动态口令应用，请联系管理员开通。",
)
_TOTP_BAD = ("totp-failed", "The one-time code is wrong or already used.",
             "动态口令错误或已被使用。")  # fmt: skip
_TICKET = ("ticket-expired", "The sign-in has expired; please start again.",
           "登录已过期，请重新开始。")  # fmt: skip


def _failed(reason: tuple[str, str, str], ticket: str | None = None) -> SignInResult:
    outcome = SignInOutcome.TOTP_REQUIRED if ticket else SignInOutcome.FAILED
    return SignInResult(outcome, ticket=ticket, reason=reason[0], en=reason[1], zh=reason[2])


class SignIn:
    """The two sign-in steps over ``auth_users`` and ``auth_login_tickets``."""

    def __init__(
        self, repo: Repository, accounts: AccountStore, clock: Clock, settings: AuthSettings,
        on_event: EventSink = discard_event,
    ) -> None:
        self.repo = repo
        self.accounts = accounts
        self.clock = clock
        self.settings = settings
        self.on_event = on_event
        self.hasher = accounts.hasher
        # verified against when the user name is unknown, so both answers take as long
        self._dummy_hash: str | None = None

    def _event(self, outcome: str, reason: str, user_id: str | None, client_id: str | None,
               ) -> None:  # fmt: skip
        self.on_event(AuthEvent("login", outcome, self.clock(), reason, user_id, client_id))

    def password(self, username: str, password: str, *, client_id: str | None = None,
                 ) -> SignInResult:  # fmt: skip
        """Check ``password`` for ``username``. An unknown name and a wrong password give
        the same answer; ``settings.max_failed_logins`` failures in a row lock the account
        for ``settings.lockout_seconds`` (the lock is checked before the password)."""
        now = self.clock()
        rows = self.repo.query(
            "SELECT id, password_hash, disabled, failed_logins, locked_until, totp_secret, role "
            "FROM auth_users WHERE username = ?",
            (username.strip(),),
        )
        if not rows:
            if self._dummy_hash is None:
                self._dummy_hash = hash_password("no such user, timing only", self.hasher)
            verify_password(self._dummy_hash, password or "-", self.hasher)
            self._event("failure", _BAD[0], None, client_id)
            return _failed(_BAD)
        user_id, stored, disabled, failures, locked_until, totp_secret, role = rows[0]
        if locked_until is not None and int(locked_until) > now:
            self._event("failure", _LOCKED[0], user_id, client_id)
            return _failed(_LOCKED)
        if not password or not verify_password(stored, password, self.hasher):
            failures = int(failures) + 1
            lock = failures >= self.settings.max_failed_logins
            with self.repo.transaction() as tx:
                tx.execute(
                    "UPDATE auth_users SET failed_logins = ?, locked_until = ? WHERE id = ?",
                    (0 if lock else failures,
                     now + self.settings.lockout_seconds * _S if lock else None, user_id),
                )
            self._event("failure", _LOCKED[0] if lock else _BAD[0], user_id, client_id)
            return _failed(_BAD)
        if disabled:
            self._event("failure", _DISABLED[0], user_id, client_id)
            return _failed(_DISABLED)
        with self.repo.transaction() as tx:
            tx.execute("UPDATE auth_users SET failed_logins = 0, locked_until = NULL WHERE id = ?",
                       (user_id,))  # fmt: skip
            if needs_rehash(stored, self.hasher):
                tx.execute("UPDATE auth_users SET password_hash = ? WHERE id = ?",
                           (hash_password(password, self.hasher), user_id))  # fmt: skip
        if totp_secret:
            ticket = secrets.token_urlsafe(32)
            with self.repo.transaction() as tx:
                tx.execute(
                    "DELETE FROM auth_login_tickets WHERE expires_at < ?", (now,)
                )
                tx.execute(
                    "INSERT INTO auth_login_tickets (ticket_hash, user_id, expires_at) "
                    "VALUES (?, ?, ?)",
                    (_hash(ticket), user_id, now + self.settings.login_ticket_seconds * _S),
                )
            return SignInResult(SignInOutcome.TOTP_REQUIRED, ticket=ticket)
        if Role(role) in STAFF_ROLES and self.settings.staff_totp_required:
            self._event("failure", _NO_TOTP[0], user_id, client_id)
            return _failed(_NO_TOTP)
        self._event("success", "password", user_id, client_id)
        return SignInResult(SignInOutcome.OK, user=self.accounts.get(user_id), amr=("pwd",))

    def totp(self, ticket: str, code: str, *, client_id: str | None = None) -> SignInResult:
        """The second step: ``code`` for the user whose password ``ticket`` vouches for.
        A wrong code keeps the ticket (at most five tries); a code is accepted once."""
        now = self.clock()
        key = _hash(ticket)
        rows = self.repo.query(
            "SELECT t.user_id, t.attempts, u.totp_secret, u.totp_last_step, u.disabled "
            "FROM auth_login_tickets t JOIN auth_users u ON u.id = t.user_id "
            "WHERE t.ticket_hash = ? AND t.expires_at > ?",
            (key, now),
        )
        if not rows or int(rows[0][1]) >= _MAX_TOTP_ATTEMPTS or not rows[0][2] or rows[0][4]:
            self._event("failure", _TICKET[0], rows[0][0] if rows else None, client_id)
            return _failed(_TICKET)
        user_id, attempts, secret, last_step, _ = rows[0]
        step = verify_totp(secret, code, now // _S,
                           last_step=None if last_step is None else int(last_step))  # fmt: skip
        with self.repo.transaction() as tx:
            accepted = step is not None and bool(tx.execute(
                "UPDATE auth_users SET totp_last_step = ? WHERE id = ? AND "
                "(totp_last_step IS NULL OR totp_last_step < ?) RETURNING id",
                (step, user_id, step),
            ))
            if accepted:
                tx.execute("DELETE FROM auth_login_tickets WHERE ticket_hash = ?", (key,))
            else:
                tx.execute(
                    "UPDATE auth_login_tickets SET attempts = attempts + 1 WHERE ticket_hash = ?",
                    (key,),
                )
        if not accepted:
            self._event("failure", _TOTP_BAD[0], user_id, client_id)
            left = int(attempts) + 1 < _MAX_TOTP_ATTEMPTS
            return _failed(_TOTP_BAD, ticket if left else None)
        self._event("success", "password+totp", user_id, client_id)
        return SignInResult(SignInOutcome.OK, user=self.accounts.get(user_id), amr=("pwd", "otp"))

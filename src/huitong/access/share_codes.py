"""One-time share codes: a patient lets one doctor in for a while (issue 5, "Consent").

The patient issues a code — eight characters from an alphabet without look-alikes (no 0/O,
1/I/L), shown as ``ABCD-EFGH``, plus a QR payload carrying the same code — with an expiry,
a scope (resource types; empty means every non-sensitive type) and, optionally, sensitive
labels to include. The code is stored only as its HMAC-SHA-256 under a server key
(:mod:`huitong.access.secrets`), written ``h1:<hex>``: the code space is small enough that a
plain digest in a stolen table would be reversed by trying every code, a keyed one is not.
Codes issued before the key (a bare SHA-256 hex digest) stay redeemable until they expire
(30 days at most); nothing new is stored that way. A clinician redeems it
once: an atomic ``UPDATE … WHERE redeemed_at IS NULL`` turns the row into a grant for that
clinician's user until ``now + access``; a second redemption, an expired, withdrawn or
unknown code is refused with a bilingual reason. :func:`load_access_grants` (called by
``server/authn.py`` on every clinician request) reads the grants still open, so expiry and
withdrawal act on the very next request. The patient lists their codes (who redeemed each,
until when) and may withdraw one at any time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from huitong.access.break_glass import require_clinician_user
from huitong.access.consent import SENSITIVE_LABELS
from huitong.access.consent_events import (
    ConsentEvent,
    ConsentEventSink,
    discard_consent_event,
)
from huitong.access.policy import is_clinical
from huitong.access.principal import BreakGlass, Principal, Role, ShareGrant
from huitong.access.secrets import SHARE_CODE_KEY, server_secret
from huitong.clock import Clock, IdFactory, new_uuid
from huitong.fhir.definitions import resource_types as all_resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository

__all__ = [
    "CODE_ALPHABET",
    "IssuedCode",
    "ShareCodeService",
    "ShareCodeSummary",
    "check_resource_types",
    "check_scope",
    "keyed_hash",
    "load_access_grants",
    "normalize_code",
    "patient_of",
]

# 31 symbols: digits and capitals without 0/O, 1/I/L — read aloud or typed without doubt.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
QR_PREFIX = "HUITONG-SHARE:1:"
_MINUTE = 60_000_000
DEFAULT_VALID_MINUTES = 24 * 60
MAX_VALID_MINUTES = 30 * 24 * 60
DEFAULT_ACCESS_HOURS = 24
MAX_ACCESS_HOURS = 30 * 24
# Ended break-glass sessions stay on the principal this long, so a read after the window
# says "your emergency access ended at …" instead of a bare "no relationship".
_ENDED_GLASS_KEPT_US = 24 * 3600 * 1_000_000


def normalize_code(raw: str) -> str:
    """The code as stored: upper case, without spaces, hyphens or the QR prefix."""
    text = raw.strip()
    if text.upper().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX) :]
    return "".join(ch for ch in text.upper() if ch not in " -\t")


KEYED_PREFIX = "h1:"  # HMAC-SHA-256 under the server's share-code key


def keyed_hash(code: str, key: bytes) -> str:
    """What is stored for ``code``: ``h1:`` and its HMAC-SHA-256 (hex) under ``key``."""
    mac = hmac.new(key, normalize_code(code).encode(), hashlib.sha256).hexdigest()
    return KEYED_PREFIX + mac


def _legacy_hash(code: str) -> str:
    """The unkeyed SHA-256 stored before the key existed (found, never written)."""
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def patient_of(principal: Principal, patient_id: str | None) -> str:
    """The patient a patient-role principal acts for: ``patient_id`` if it is one of
    theirs, or their only record when none is named. FORBIDDEN otherwise."""
    if principal.role is not Role.PATIENT or not principal.patient_ids:
        raise FhirError(
            Category.FORBIDDEN,
            "Only a patient signed in to their own record can do this / "
            "只有登录本人记录的患者可以执行此操作",
        )
    if patient_id is None:
        if len(principal.patient_ids) != 1:
            raise FhirError(
                Category.INVALID,
                "Name the patient record ('patient'): this account is linked to several / "
                "此账户关联了多条患者记录，请指定“patient”",
            )
        return next(iter(principal.patient_ids))
    if patient_id not in principal.patient_ids:
        raise FhirError(
            Category.FORBIDDEN,
            "Patients may act only for their own record / 患者只能为本人记录执行此操作",
        )
    return patient_id


def check_scope(principal: Principal, interaction: str, resource_type: str) -> None:
    """A third-party app's token must carry the scope for what it asks (first-party
    sessions have no scopes: the role decides)."""
    if principal.scopes is not None and not principal.scopes.allows(interaction,
                                                                     resource_type):  # fmt: skip
        raise FhirError(
            Category.FORBIDDEN,
            f"The access token's scopes do not permit {interaction} on {resource_type} / "
            f"访问令牌的权限范围不允许对 {resource_type} 执行 {interaction}",
        )


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """What the patient is shown once: the code (never stored), its QR payload, its id."""

    code: str
    code_id: str
    patient_id: str
    qr_payload: str
    expires_at: int
    access_us: int
    resource_types: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def display(self) -> str:
        return f"{self.code[:4]}-{self.code[4:]}"


@dataclass(frozen=True, slots=True)
class ShareCodeSummary:
    """One code as its patient sees it later (the code itself is gone)."""

    code_id: str
    patient_id: str
    status: str  # unused | expired | active | ended | withdrawn
    created_at: int
    expires_at: int
    resource_types: tuple[str, ...]
    labels: tuple[str, ...]
    redeemed_at: int | None
    redeemed_by: str | None
    redeemed_by_name: str | None
    redeemed_org: str | None
    grant_until: int | None


_SUMMARY_COLUMNS = (
    "s.id, s.patient_id, s.created_at, s.expires_at, s.resource_types, s.labels, "
    "s.redeemed_at, s.redeemed_by, u.display_name, s.redeemed_org, s.grant_until, s.revoked_at"
)


def _summary(row: Sequence[Any], now: int) -> ShareCodeSummary:
    (cid, pid, created, expires, types, labels, redeemed_at, by, name, org, until,
     revoked) = row  # fmt: skip
    if revoked is not None:
        status = "withdrawn"
    elif redeemed_at is None:
        status = "unused" if now < int(expires) else "expired"
    else:
        status = "active" if until is not None and now < int(until) else "ended"
    return ShareCodeSummary(
        cid,
        pid,
        status,
        int(created),
        int(expires),
        tuple(orjson.loads(types)),
        tuple(orjson.loads(labels)),
        None if redeemed_at is None else int(redeemed_at),
        by,
        name or None,
        org,
        None if until is None else int(until),
    )


def check_resource_types(values: Iterable[str]) -> tuple[str, ...]:
    """``values`` sorted and unique; INVALID unless each is a patient-data type."""
    known = all_resource_types()
    out = sorted(set(values))
    bad = [t for t in out if t not in known or not is_clinical(t)]
    if bad:
        raise FhirError(
            Category.INVALID,
            f"Not a patient data type: {', '.join(bad)[:200]} / "
            f"不是患者数据类型：{', '.join(bad)[:200]}",
        )
    return tuple(out)


def _labels(values: Iterable[str], sensitive: frozenset[str]) -> tuple[str, ...]:
    out = sorted(set(values))
    bad = [x for x in out if x not in sensitive]
    if bad:
        raise FhirError(
            Category.INVALID,
            f"Unknown sensitive category: {', '.join(bad)[:100]} (known: "
            f"{', '.join(sorted(sensitive))}) / 未知的敏感类别：{', '.join(bad)[:100]}",
        )
    return tuple(out)


def _bounded(value: int | None, default: int, maximum: int, what_en: str, what_zh: str) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise FhirError(
            Category.INVALID,
            f"'{what_en}' must be a whole number from 1 to {maximum} / "
            f"“{what_en}”（{what_zh}）须为 1 到 {maximum} 的整数",
        )
    return value


class ShareCodeService:
    """Issue, list, withdraw and redeem share codes over ``repo``'s ``access_share_codes``."""

    def __init__(
        self, repo: Repository, *, clock: Clock | None = None, new_id: IdFactory | None = None,
        on_event: ConsentEventSink = discard_consent_event,
        sensitive_labels: frozenset[str] = SENSITIVE_LABELS, key_file: str = "",
    ) -> None:  # fmt: skip
        self.repo = repo
        self.clock: Clock = clock or repo.clock
        self.new_id: IdFactory = new_id or new_uuid
        self.on_event = on_event
        self.sensitive_labels = sensitive_labels
        self.key_file = key_file
        self._key: bytes | None = None
        self._key_lock = threading.Lock()

    def _hash_key(self) -> bytes:
        """The HMAC key, read (or generated) on first use."""
        with self._key_lock:
            if self._key is None:
                self._key = server_secret(self.repo, SHARE_CODE_KEY, self.clock,
                                          key_file=self.key_file)  # fmt: skip
            return self._key

    def _hashes(self, code: str) -> tuple[str, str]:
        """(keyed, legacy) digests of ``code``: rows are found by either."""
        return keyed_hash(code, self._hash_key()), _legacy_hash(code)

    def issue(
        self, principal: Principal, *, patient_id: str | None = None,
        resource_types: Iterable[str] = (), labels: Iterable[str] = (),
        valid_minutes: int | None = None, access_hours: int | None = None,
    ) -> IssuedCode:  # fmt: skip
        """A new code for the signed-in patient's record (see the module docstring)."""
        pid = patient_of(principal, patient_id)
        check_scope(principal, "create", "Consent")
        types = check_resource_types(resource_types)
        chosen = _labels(labels, self.sensitive_labels)
        valid = _bounded(valid_minutes, DEFAULT_VALID_MINUTES, MAX_VALID_MINUTES,
                         "valid_minutes", "有效分钟数")  # fmt: skip
        hours = _bounded(access_hours, DEFAULT_ACCESS_HOURS, MAX_ACCESS_HOURS,
                         "access_hours", "访问小时数")  # fmt: skip
        now = self.clock()
        code_id = self.new_id()
        access_us = hours * 60 * _MINUTE
        self._hash_key()  # before the transaction: generating the key writes on its own
        with self.repo.transaction() as tx:
            # a collision of 8 random symbols is rare but possible: draw again
            for _ in range(5):
                code = _new_code()
                # a clash with a legacy row too: redeeming finds rows by either digest
                clash = tx.execute(
                    "SELECT 1 FROM access_share_codes WHERE code_hash IN (?, ?)",
                    self._hashes(code),
                )
                if not clash:
                    break
            else:  # pragma: no cover - 31^8 codes
                raise FhirError(Category.UNAVAILABLE, "no free share code / 暂无可用共享码")
            tx.execute(
                "INSERT INTO access_share_codes (id, code_hash, patient_id, issued_by, "
                "resource_types, labels, access_us, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (code_id, self._hashes(code)[0], pid,
                 principal.user_id or principal.client_id or "",
                 orjson.dumps(list(types)).decode(), orjson.dumps(list(chosen)).decode(),
                 access_us, now, now + valid * _MINUTE),
            )  # fmt: skip
            self.on_event(ConsentEvent(
                "share-code-issued", "issue", now, pid, principal.user_id, principal.role.value,
                principal.organization_id, "", (f"share-code/{code_id}",),
                now + valid * _MINUTE,
            ), tx)  # fmt: skip
        return IssuedCode(code, code_id, pid, QR_PREFIX + code, now + valid * _MINUTE,
                          access_us, types, chosen)  # fmt: skip

    def list_for_patient(self, principal: Principal) -> list[ShareCodeSummary]:
        """The codes issued on the signed-in patient's records, newest first."""
        patient_of(principal, next(iter(principal.patient_ids), None))
        ids = sorted(principal.patient_ids)
        rows = self.repo.query(
            f"SELECT {_SUMMARY_COLUMNS} FROM access_share_codes s "
            "LEFT JOIN auth_users u ON u.id = s.redeemed_by "
            f"WHERE s.patient_id IN ({', '.join('?' * len(ids))}) "
            "ORDER BY s.created_at DESC, s.id",
            ids,
        )
        now = self.clock()
        return [_summary(r, now) for r in rows]

    def list_for_clinician(self, principal: Principal) -> list[ShareCodeSummary]:
        """The grants the signed-in clinician redeemed, newest first."""
        user = require_clinician_user(principal)
        rows = self.repo.query(
            f"SELECT {_SUMMARY_COLUMNS} FROM access_share_codes s "
            "LEFT JOIN auth_users u ON u.id = s.redeemed_by "
            "WHERE s.redeemed_by = ? ORDER BY s.redeemed_at DESC, s.id",
            (user,),
        )
        now = self.clock()
        return [_summary(r, now) for r in rows]

    def withdraw(self, principal: Principal, code_id: str) -> ShareCodeSummary:
        """The patient withdraws a code: unused, it can no longer be redeemed; redeemed,
        the grant ends now. NOT_FOUND for a code not on their records."""
        patient_of(principal, next(iter(principal.patient_ids), None))
        check_scope(principal, "update", "Consent")
        now = self.clock()
        ids = sorted(principal.patient_ids)
        with self.repo.transaction() as tx:
            rows = tx.execute(
                "UPDATE access_share_codes SET revoked_at = ?, grant_until = CASE WHEN "
                "grant_until IS NOT NULL AND grant_until > ? THEN ? ELSE grant_until END "
                f"WHERE id = ? AND revoked_at IS NULL AND patient_id IN "
                f"({', '.join('?' * len(ids))}) RETURNING patient_id",
                (now, now, now, code_id, *ids),
            )
            if not rows:
                known = tx.execute(
                    "SELECT patient_id FROM access_share_codes WHERE id = ?", (code_id,)
                )
                if not known or known[0][0] not in principal.patient_ids:
                    raise FhirError(Category.NOT_FOUND, "No such share code / 没有该共享码")
            else:
                self.on_event(ConsentEvent(
                    "share-code-revoked", "revoke", now, rows[0][0], principal.user_id,
                    principal.role.value, None, "", (f"share-code/{code_id}",),
                ), tx)  # fmt: skip
        found = [s for s in self.list_for_patient(principal) if s.code_id == code_id]
        return found[0]

    def redeem(self, principal: Principal, code: str) -> ShareGrant:
        """A clinician redeems ``code``: once, before it expires. The grant is for the
        clinician's user account and lasts the access time the patient chose."""
        user = require_clinician_user(principal)
        check_scope(principal, "read", "Patient")
        normal = normalize_code(code if isinstance(code, str) else "")
        hashes = self._hashes(normal)
        now = self.clock()
        with self.repo.transaction() as tx:
            rows = tx.execute(
                "UPDATE access_share_codes SET redeemed_at = ?, redeemed_by = ?, "
                "redeemed_org = ?, grant_until = ? + access_us WHERE code_hash IN (?, ?) "
                "AND redeemed_at IS NULL AND revoked_at IS NULL AND expires_at > ? "
                "RETURNING id, patient_id, resource_types, labels, grant_until",
                (now, user, principal.organization_id, now, *hashes, now),
            )
            if rows:
                cid, pid, types, labels, until = rows[0]
                grant = ShareGrant(pid, cid, int(until), frozenset(orjson.loads(types)),
                                   frozenset(orjson.loads(labels)))  # fmt: skip
                self.on_event(ConsentEvent(
                    "share-code-redeemed", "redeem", now, pid, user, principal.role.value,
                    principal.organization_id, "", (f"share-code/{cid}",), grant.until,
                ), tx)  # fmt: skip
                return grant
            known = tx.execute(
                "SELECT id, patient_id, redeemed_at, revoked_at, expires_at "
                "FROM access_share_codes WHERE code_hash IN (?, ?)",
                hashes,
            )
            reason, err = _refusal(known[0] if known else None, len(normal))
            self.on_event(ConsentEvent(
                "share-code-redeemed", "refused", now, known[0][1] if known else None, user,
                principal.role.value, principal.organization_id, reason,
                (f"share-code/{known[0][0]}",) if known else (),
            ), tx)  # fmt: skip
        raise err


def _refusal(row: Sequence[Any] | None, length: int) -> tuple[str, FhirError]:
    if row is None:
        hint_en = "" if length == CODE_LENGTH else f" A code has {CODE_LENGTH} characters."
        hint_zh = "" if length == CODE_LENGTH else f"共享码为 {CODE_LENGTH} 位。"
        return "unknown", FhirError(
            Category.NOT_FOUND,
            f"No such share code; check it with the patient.{hint_en} / "
            f"没有该共享码，请与患者核对。{hint_zh}",
        )
    _, _, redeemed_at, revoked_at, _ = row
    if revoked_at is not None:
        return "withdrawn", FhirError(
            Category.GONE, "The patient has withdrawn this share code / 患者已撤回该共享码"
        )
    if redeemed_at is not None:
        return "used", FhirError(
            Category.CONFLICT,
            "This share code has already been used; each code works once — ask the patient "
            "for a new one / 该共享码已被使用，每个共享码只能使用一次，请向患者索取新码",
        )
    return "expired", FhirError(
        Category.GONE,
        "This share code has expired; ask the patient for a new one / "
        "该共享码已过期，请向患者索取新码",
    )


def load_access_grants(
    repo: Repository, user_id: str, now: int
) -> tuple[tuple[BreakGlass, ...], tuple[ShareGrant, ...]]:
    """The clinician user's break-glass sessions (open, or ended within a day) and open
    share-code grants, in one query: what ``server/authn.py`` puts on the principal."""
    rows = repo.query(
        "SELECT 'g', id, patient_id, resource_types, labels, grant_until, "
        "CAST(NULL AS BIGINT) FROM access_share_codes "
        "WHERE redeemed_by = ? AND grant_until > ? AND revoked_at IS NULL "
        "UNION ALL SELECT 'b', id, patient_id, reason, '', until, started_at "
        "FROM access_break_glass WHERE user_id = ? AND until > ?",
        (user_id, now, user_id, now - _ENDED_GLASS_KEPT_US),
    )
    glass: list[BreakGlass] = []
    grants: list[ShareGrant] = []
    for kind, rid, pid, a, b, until, start in sorted(rows, key=lambda r: (r[0], r[1])):
        if kind == "g":
            grants.append(ShareGrant(pid, rid, int(until), frozenset(orjson.loads(a)),
                                     frozenset(orjson.loads(b))))  # fmt: skip
        else:
            glass.append(BreakGlass(pid, a, int(start), int(until)))
    return tuple(glass), tuple(grants)

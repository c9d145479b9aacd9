"""Settings of the authorization server, with defaults; the server reads them from
``HUITONG_AUTH_*`` environment variables (see :meth:`AuthSettings.from_env`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Literal

__all__ = ["AUTH_SETTINGS_ENV", "AuthSettings"]

# Field → environment variable; the lead's config.py documents each one.
AUTH_SETTINGS_ENV: dict[str, str] = {
    "issuer": "HUITONG_AUTH_ISSUER",
    "access_token_seconds": "HUITONG_AUTH_ACCESS_TOKEN_SECONDS",
    "refresh_token_seconds": "HUITONG_AUTH_REFRESH_TOKEN_SECONDS",
    "id_token_seconds": "HUITONG_AUTH_ID_TOKEN_SECONDS",
    "code_seconds": "HUITONG_AUTH_CODE_SECONDS",
    "assertion_max_seconds": "HUITONG_AUTH_ASSERTION_MAX_SECONDS",
    "signing_alg": "HUITONG_AUTH_SIGNING_ALG",
    "staff_totp_required": "HUITONG_AUTH_STAFF_TOTP_REQUIRED",
    "max_failed_logins": "HUITONG_AUTH_MAX_FAILED_LOGINS",
    "lockout_seconds": "HUITONG_AUTH_LOCKOUT_SECONDS",
}


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``issuer`` is the server's public root URL (``https://hie.example.cn``); empty means
    "the root URL of the request", which suits one host on loopback but not a proxy.

    Lifetimes are in seconds. ``assertion_max_seconds`` bounds how far in the future a SMART
    backend client assertion may expire (the SMART Backend Services spec says five minutes).
    ``signing_alg`` is ``ES256`` or ``RS256``. With ``staff_totp_required`` a staff member
    who has not enrolled TOTP cannot sign in; otherwise TOTP is asked whenever enrolled.
    ``max_failed_logins`` wrong passwords in a row lock an account for ``lockout_seconds``.
    """

    issuer: str = ""
    access_token_seconds: int = 300
    refresh_token_seconds: int = 30 * 24 * 3600
    id_token_seconds: int = 300
    code_seconds: int = 60
    assertion_max_seconds: int = 300
    signing_alg: Literal["ES256", "RS256"] = "ES256"
    staff_totp_required: bool = False
    max_failed_logins: int = 5
    lockout_seconds: int = 900
    login_ticket_seconds: int = 300

    def __post_init__(self) -> None:
        if self.signing_alg not in ("ES256", "RS256"):
            raise ValueError("signing_alg must be ES256 or RS256")
        if self.access_token_seconds <= 0 or self.code_seconds <= 0:
            raise ValueError("token and code lifetimes must be positive")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AuthSettings:
        """Settings from ``env`` (default ``os.environ``); unset variables keep defaults."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            name = AUTH_SETTINGS_ENV.get(f.name)
            if name is None or name not in env:
                continue
            raw = env[name].strip()
            if f.type in ("int", int):
                values[f.name] = int(raw)
            elif f.type in ("bool", bool):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]

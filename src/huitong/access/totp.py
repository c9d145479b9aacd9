"""Time-based one-time passwords for staff — RFC 6238 (TOTP over RFC 4226 HOTP) via ``pyotp``.

The time is passed in (seconds since the epoch), never read here. :func:`verify_totp`
returns the time step the code matched, so the caller can store it and refuse the same code
twice (RFC 6238 §5.2: a verifier must not accept the second attempt of the same OTP).
"""

from __future__ import annotations

import pyotp

__all__ = ["new_totp_secret", "totp_code", "totp_uri", "verify_totp"]

STEP_SECONDS = 30
DIGITS = 6


def new_totp_secret() -> str:
    """A random 160-bit secret, base32 (what authenticator apps scan)."""
    return pyotp.random_base32(32)


def totp_uri(secret: str, account: str, issuer: str = "Huitong") -> str:
    """The ``otpauth://`` provisioning URI for a QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def totp_code(secret: str, at: int) -> str:
    """The code for time ``at`` (seconds since the epoch)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(at)


def verify_totp(
    secret: str, code: str, at: int, *, window: int = 1, last_step: int | None = None
) -> int | None:
    """The time step ``code`` is valid for at ``at`` (± ``window`` steps for clock drift),
    or None. A step not after ``last_step`` (the last one accepted for this user) is
    refused: each code works once."""
    code = code.strip()
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = at // STEP_SECONDS
    for step in range(now_step - window, now_step + window + 1):
        if step < 0 or (last_step is not None and step <= last_step):
            continue
        if pyotp.utils.strings_equal(totp.at(step * STEP_SECONDS), code):
            return step
    return None

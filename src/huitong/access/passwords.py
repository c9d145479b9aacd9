"""Password hashing with Argon2id (RFC 9106) through ``argon2-cffi``.

Hashes are PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``): the parameters
travel with the hash, so raising them later only needs :func:`needs_rehash` at the next
successful login. Verification time does not depend on where a wrong password differs.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["PasswordHasher", "hash_password", "needs_rehash", "verify_password"]

_DEFAULT = PasswordHasher()  # argon2-cffi's RFC 9106 "low memory" profile


def hash_password(password: str, hasher: PasswordHasher = _DEFAULT) -> str:
    """A salted Argon2id hash of ``password`` (a new random salt each call)."""
    if not password:
        raise ValueError("an empty password cannot be set")
    return hasher.hash(password)


def verify_password(stored: str, password: str, hasher: PasswordHasher = _DEFAULT) -> bool:
    """Does ``password`` match ``stored``? False also for a malformed stored hash."""
    try:
        return hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str, hasher: PasswordHasher = _DEFAULT) -> bool:
    """True when ``stored`` was made with other parameters than ``hasher``'s."""
    return hasher.check_needs_rehash(stored)

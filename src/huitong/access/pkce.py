"""PKCE verifier checks — RFC 7636, ``S256`` only.

https://www.rfc-editor.org/rfc/rfc7636#section-4.6: the server recomputes
``BASE64URL(SHA256(ASCII(code_verifier)))`` and compares it with the stored challenge. The
``plain`` method is refused (OAuth 2.1 and SMART v2 require S256).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["pkce_challenge", "verify_pkce"]

# §4.1: 43-128 characters from the unreserved set
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")  # a base64url SHA-256 without padding


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge for ``verifier``; ``ValueError`` if the verifier is malformed."""
    if not _VERIFIER.match(verifier):
        raise ValueError("a PKCE code_verifier is 43-128 unreserved characters (RFC 7636 §4.1)")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_pkce(verifier: str, challenge: str, method: str = "S256") -> bool:
    """Does ``verifier`` answer ``challenge``? False for any method but ``S256``, a
    malformed verifier or challenge, or a mismatch (compared in constant time)."""
    if method != "S256" or not _CHALLENGE.match(challenge) or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(pkce_challenge(verifier), challenge)

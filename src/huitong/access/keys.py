"""The server's token-signing keys, kept in the database (``auth_signing_keys``).

The first start generates a key (ES256 on P-256 by default, or RS256 with 2048-bit RSA);
:meth:`SigningKeys.rotate` makes a new *current* key and keeps the old one as *previous*, so
tokens signed just before a rotation still verify; the key before that is retired. The JWKS
(RFC 7517) publishes current and previous public keys, each named by its RFC 7638 thumbprint
``kid``. Signing and verification go through ``joserfc``; the algorithm list is explicit,
so ``alg: none`` or an HMAC confusion can never verify.

The private key is stored as a JWK in the database: whoever can read that table can mint
tokens, so protect the database like the keys it holds.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, RSAKey, import_key

from huitong.clock import Clock
from huitong.store.repository import Repository

__all__ = ["SIGNING_ALGORITHMS", "SignatureInvalid", "SigningKeys"]

SIGNING_ALGORITHMS = ("ES256", "RS256")
_RELOAD_US = 60_000_000  # other workers' rotations become visible within a minute


class SignatureInvalid(Exception):
    """A token that does not verify: malformed, unknown ``kid``, or a bad signature."""


def _generate(alg: str) -> Key:
    key: Key
    if alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    else:
        key = RSAKey.generate_key(2048, private=True)
    key.ensure_kid()
    return key


class SigningKeys:
    """Current and previous signing keys, cached in memory and reloaded every minute or on
    an unknown ``kid``."""

    def __init__(self, repo: Repository, clock: Clock, alg: str = "ES256") -> None:
        if alg not in SIGNING_ALGORITHMS:
            raise ValueError(f"unsupported signing algorithm {alg!r}")
        self.repo = repo
        self.clock = clock
        self.alg = alg
        self._lock = threading.Lock()
        self._loaded_at: int | None = None
        self._current: tuple[str, str, Key] | None = None  # kid, alg, private key
        self._verify: dict[str, tuple[str, Key]] = {}  # kid -> alg, public key

    # -- storage -------------------------------------------------------------------------
    def _insert_current(self) -> None:
        key = _generate(self.alg)
        with self.repo.transaction() as tx:
            # the partial unique index on status='current' makes a concurrent first start
            # by another worker a no-op here
            tx.execute(
                "INSERT INTO auth_signing_keys (kid, alg, private_jwk, public_jwk, status, "
                "created_at) VALUES (?, ?, ?, ?, 'current', ?) ON CONFLICT DO NOTHING",
                (key.kid, self.alg, orjson.dumps(key.as_dict(private=True)).decode(),
                 orjson.dumps(key.as_dict(private=False)).decode(), self.clock()),
            )

    def _load(self) -> None:
        rows = self.repo.query(
            "SELECT kid, alg, private_jwk, status FROM auth_signing_keys "
            "WHERE status IN ('current', 'previous')"
        )
        if not any(r[3] == "current" for r in rows):
            self._insert_current()
            rows = self.repo.query(
                "SELECT kid, alg, private_jwk, status FROM auth_signing_keys "
                "WHERE status IN ('current', 'previous')"
            )
        verify: dict[str, tuple[str, Key]] = {}
        current = None
        for kid, alg, private_jwk, status in rows:
            private = import_key(orjson.loads(private_jwk))
            verify[kid] = (alg, import_key(private.as_dict(private=False)))
            if status == "current":
                current = (kid, alg, private)
        assert current is not None
        self._current, self._verify, self._loaded_at = current, verify, self.clock()

    def _fresh(self, force: bool = False) -> None:
        with self._lock:
            now = self.clock()
            if force or self._loaded_at is None or now - self._loaded_at > _RELOAD_US:
                self._load()

    def ensure(self) -> str:
        """Load the keys, generating the first one if there is none; the current ``kid``."""
        self._fresh()
        assert self._current is not None
        return self._current[0]

    def rotate(self) -> str:
        """A new current key; the old current becomes previous, the old previous retired.
        Returns the new ``kid``."""
        self.ensure()
        key = _generate(self.alg)
        now = self.clock()
        with self.repo.transaction() as tx:
            tx.execute("UPDATE auth_signing_keys SET status = 'retired', rotated_at = ? "
                       "WHERE status = 'previous'", (now,))  # fmt: skip
            tx.execute("UPDATE auth_signing_keys SET status = 'previous', rotated_at = ? "
                       "WHERE status = 'current'", (now,))  # fmt: skip
            tx.execute(
                "INSERT INTO auth_signing_keys (kid, alg, private_jwk, public_jwk, status, "
                "created_at) VALUES (?, ?, ?, ?, 'current', ?)",
                (key.kid, self.alg, orjson.dumps(key.as_dict(private=True)).decode(),
                 orjson.dumps(key.as_dict(private=False)).decode(), now),
            )
        self._fresh(force=True)
        return str(key.kid)

    # -- use -----------------------------------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        """The public JWKS: current and previous keys, with ``use`` and ``alg``."""
        self._fresh()
        keys = []
        for kid, (alg, key) in sorted(self._verify.items()):
            keys.append({**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        """A compact JWS of ``claims`` with the current key (``kid`` in the header)."""
        self._fresh()
        assert self._current is not None
        kid, alg, key = self._current
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    def verify(self, token: str, *, typ: str | None = None) -> tuple[dict[str, Any], str]:
        """The claims and ``kid`` of a token signed by a current or previous key; claims are
        NOT validated here (the caller checks ``exp``, ``iss``, ``aud``…).
        :class:`SignatureInvalid` when it does not verify."""
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise SignatureInvalid("malformed token") from exc
        kid, alg = header.get("kid"), header.get("alg")
        if typ is not None and header.get("typ") != typ:
            raise SignatureInvalid("wrong token type")
        if not isinstance(kid, str):
            raise SignatureInvalid("no kid")
        self._fresh()
        if kid not in self._verify:
            self._fresh(force=True)
        known = self._verify.get(kid)
        if known is None or alg != known[0]:
            raise SignatureInvalid("unknown kid or algorithm")
        try:
            decoded = jwt.decode(token, known[1], algorithms=[known[0]])
        except (JoseError, ValueError) as exc:
            raise SignatureInvalid("bad signature") from exc
        return dict(decoded.claims), kid

    def knows(self, kid: str) -> bool:
        """Whether ``kid`` is still a current or previous key (reloaded as :meth:`verify`
        reloads): a token it signed may still be accepted. For a token whose signature was
        checked earlier (access/verified_tokens.py): a retired key's tokens stop there."""
        self._fresh()
        return kid in self._verify

    def key_set(self) -> KeySet:
        self._fresh()
        return KeySet([k for _, k in self._verify.values()])

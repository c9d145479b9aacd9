"""Registered applications (OAuth 2 clients) and the scopes each may be granted.

Three kinds (https://hl7.org/fhir/smart-app-launch/app-launch.html#support-for-public-and-confidential-apps):

- ``public``: a browser or native app; authorization code with PKCE S256, no secret;
- ``confidential``: a server-side app or a simple integration; a secret (stored as a SHA-256
  digest — it is 256 random bits, so a slow hash adds nothing) sent with HTTP Basic or in
  the form; authorization code and/or ``client_credentials``;
- ``backend``: SMART Backend Services
  (https://hl7.org/fhir/smart-app-launch/backend-services.html): ``client_credentials``
  authenticated by a JWT signed with one of the client's registered public keys (RS384 or
  ES384), found by ``kid``.

:class:`Client` implements the methods Authlib's authorization server calls
(``authlib.oauth2.rfc6749.ClientMixin``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import orjson
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from huitong.access.scopes import ResourceScope, ScopeError, parse_scope, parse_scopes
from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository

__all__ = [
    "ASSERTION_ALGORITHMS",
    "PRIVATE_KEY_JWT",
    "Client",
    "ClientKind",
    "ClientStore",
    "grantable_scopes",
]

PRIVATE_KEY_JWT = "private_key_jwt"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
_KEY_TYPES = {"RSA": "RS384", "EC": "ES384"}


class ClientKind(StrEnum):
    PUBLIC = "public"
    CONFIDENTIAL = "confidential"
    BACKEND = "backend"


def _covers(allowed: ResourceScope, wanted: ResourceScope) -> bool:
    return (
        allowed.context == wanted.context
        and allowed.resource_type in ("*", wanted.resource_type)
        and wanted.permissions <= allowed.permissions
        and (not allowed.restriction or allowed.restriction == wanted.restriction)
    )


def grantable_scopes(requested: str, allowed: Sequence[str]) -> list[str]:
    """The requested scope tokens the client may have, in request order: a token it was
    registered for, or a clinical scope one of its clinical scopes covers (same context,
    the type or ``*``, a subset of the permissions, no narrower restriction). Raises
    :class:`~huitong.access.scopes.ScopeError` on a malformed clinical scope."""
    allowed_set = set(allowed)
    allowed_clinical = [s for s in map(parse_scope, allowed) if isinstance(s, ResourceScope)]
    granted: list[str] = []
    for token in dict.fromkeys(requested.split()):
        parsed = parse_scope(token)
        if token in allowed_set or (
            isinstance(parsed, ResourceScope)
            and any(_covers(a, parsed) for a in allowed_clinical)
        ):
            granted.append(token)
    return granted


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client. ``scopes`` are what it may be granted; ``jwks`` the public
    keys of a backend client; ``can_introspect`` lets a resource server introspect tokens
    issued to other clients."""

    client_id: str
    kind: ClientKind
    name: str = ""
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    organization_id: str | None = None
    can_introspect: bool = False
    created_at: int = 0
    secret_hash: str | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id, "kind": str(self.kind), "name": self.name,
            "redirect_uris": list(self.redirect_uris), "scopes": list(self.scopes),
            "kids": [k.get("kid") for k in (self.jwks or {}).get("keys", [])],
            "organization": self.organization_id, "introspect": self.can_introspect,
        }

    # -- authlib.oauth2.rfc6749.ClientMixin ------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The granted scope string; None (``invalid_scope``) when nothing requested is
        allowed. An absent scope means everything the client is registered for."""
        if not scope or not scope.strip():
            return " ".join(self.scopes) or None
        granted = grantable_scopes(scope, self.scopes)
        return " ".join(granted) or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match (OAuth 2.1 §2.3.1)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(
            self.secret_hash, _digest(client_secret)
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.kind is ClientKind.PUBLIC:
            return method == "none"
        if self.kind is ClientKind.CONFIDENTIAL:
            return method in ("client_secret_basic", "client_secret_post")
        return method == PRIVATE_KEY_JWT

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.kind is not ClientKind.BACKEND and bool(
            self.redirect_uris
        )

    def check_grant_type(self, grant_type: str) -> bool:
        if self.kind is ClientKind.BACKEND:
            return grant_type == "client_credentials"
        if grant_type in ("authorization_code", "refresh_token"):
            return bool(self.redirect_uris)
        return grant_type == "client_credentials" and self.kind is ClientKind.CONFIDENTIAL

    def public_keys(self) -> KeySet:
        return KeySet.import_key_set(self.jwks or {"keys": []})  # type: ignore[arg-type]


def _invalid(en: str, zh: str) -> FhirError:
    return FhirError(Category.INVALID, f"{en} / {zh}")


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.fragment or not parts.netloc or not (
        parts.scheme == "https" or (parts.scheme == "http" and loopback)
    ):
        raise _invalid(
            f"Redirect URI {uri!r} must be absolute https (http only on loopback), "
            "without a fragment.",
            f"回调地址 {uri!r} 须为绝对 https 地址（http 仅限本机回环），且不含片段。",
        )


def check_jwks(jwks: Any) -> dict[str, Any]:
    """A backend client's key set: public RSA (2048+ bits, RS384) or EC P-384 (ES384) keys,
    each with a distinct ``kid``. Returns the set with private members refused."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise _invalid("A JWKS is a JSON object with a non-empty 'keys' array.",
                       "JWKS 须为含非空 'keys' 数组的 JSON 对象。")  # fmt: skip
    kids: set[str] = set()
    for key in keys:
        if not isinstance(key, dict) or not key.get("kid") or key.get("kid") in kids:
            raise _invalid("Every key needs its own 'kid'.", "每个密钥都需要唯一的 'kid'。")
        kids.add(key["kid"])
        if "d" in key or "p" in key:
            raise _invalid(f"Key {key['kid']!r} contains private material; register the "
                           "public key only.",
                           f"密钥 {key['kid']!r} 含私钥内容；只能登记公钥。")  # fmt: skip
        kty = key.get("kty")
        if kty not in _KEY_TYPES or key.get("alg", _KEY_TYPES[kty]) != _KEY_TYPES[kty] or (
            kty == "EC" and key.get("crv") != "P-384"
        ):
            raise _invalid(
                f"Key {key['kid']!r}: only RSA (RS384) or EC P-384 (ES384) keys.",
                f"密钥 {key['kid']!r}：仅支持 RSA（RS384）或 EC P-384（ES384）。",
            )
    try:
        key_set = KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError) as exc:
        raise _invalid(f"The JWKS cannot be read: {exc}", f"无法读取 JWKS：{exc}") from None
    for key in key_set.keys:
        if key.key_type == "RSA" and key.raw_value.key_size < 2048:  # type: ignore[union-attr]
            raise _invalid("RSA keys need at least 2048 bits.", "RSA 密钥至少 2048 位。")
    return {"keys": [dict(k) for k in keys]}


_COLUMNS = (
    "client_id, kind, name, redirect_uris, scopes, jwks, organization_id, can_introspect, "
    "created_at, secret_hash"
)


def _client(row: Sequence[Any]) -> Client:
    return Client(
        client_id=row[0], kind=ClientKind(row[1]), name=row[2] or "",
        redirect_uris=tuple(orjson.loads(row[3] or "[]")), scopes=tuple((row[4] or "").split()),
        jwks=orjson.loads(row[5]) if row[5] else None, organization_id=row[6],
        can_introspect=bool(row[7]), created_at=int(row[8]), secret_hash=row[9],
    )


class ClientStore:
    """Clients on the repository's database (``auth_clients``)."""

    def __init__(self, repo: Repository, clock: Clock, new_id: IdFactory) -> None:
        self.repo = repo
        self.clock = clock
        self.new_id = new_id

    def add(
        self,
        kind: ClientKind | str,
        *,
        client_id: str | None = None,
        name: str = "",
        redirect_uris: Sequence[str] = (),
        scopes: str = "",
        jwks: dict[str, Any] | None = None,
        organization_id: str | None = None,
        can_introspect: bool = False,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for a confidential client, its secret (shown
        once: only its digest is stored). INVALID for a malformed registration, CONFLICT
        for a taken ``client_id``."""
        try:
            kind = ClientKind(kind)
        except ValueError:
            raise _invalid(f"Unknown client kind '{kind}'.", f"未知客户端类型“{kind}”。") from None
        try:
            parsed = parse_scopes(scopes)
        except ScopeError as exc:
            raise _invalid(f"{exc.scope}: {exc.en}", f"{exc.scope}：{exc.zh}") from None
        if not parsed.resources and not parsed.other and not scopes.strip():
            raise _invalid("A client needs at least one scope.", "客户端至少需要一个权限范围。")
        for uri in redirect_uris:
            _check_redirect_uri(uri)
        if kind is ClientKind.BACKEND:
            if jwks is None:
                raise _invalid("A backend client needs a JWKS (--jwks).",
                               "后台客户端需要 JWKS（--jwks）。")  # fmt: skip
            jwks = check_jwks(jwks)
            if redirect_uris or parsed.contexts() - {"system"}:
                raise _invalid("A backend client has system/ scopes and no redirect URIs.",
                               "后台客户端只能有 system/ 权限范围，且没有回调地址。")  # fmt: skip
        elif jwks is not None:
            raise _invalid("Only backend clients register keys.", "只有后台客户端登记密钥。")
        if kind is ClientKind.PUBLIC and not redirect_uris:
            raise _invalid("A public client needs a redirect URI.", "公开客户端需要回调地址。")
        if kind is ClientKind.PUBLIC and "system" in parsed.contexts():
            raise _invalid("A public client cannot have system/ scopes.",
                           "公开客户端不能有 system/ 权限范围。")  # fmt: skip
        client_id = (client_id or self.new_id()).strip()
        if not client_id or len(client_id) > 128 or any(c.isspace() for c in client_id):
            raise _invalid("A client id is 1-128 characters without spaces.",
                           "客户端 ID 为 1-128 个字符，不含空格。")  # fmt: skip
        if self.get(client_id) is not None:
            raise FhirError(Category.CONFLICT, f"client '{client_id}' exists / "
                            f"客户端“{client_id}”已存在")  # fmt: skip
        secret = secrets.token_urlsafe(32) if kind is ClientKind.CONFIDENTIAL else None
        with self.repo.transaction() as tx:
            tx.execute(
                "INSERT INTO auth_clients (client_id, name, kind, secret_hash, redirect_uris, "
                "scopes, jwks, organization_id, can_introspect, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (client_id, name, str(kind), _digest(secret) if secret else None,
                 orjson.dumps(list(redirect_uris)).decode(), " ".join(scopes.split()),
                 orjson.dumps(jwks).decode() if jwks else None, organization_id,
                 int(can_introspect), self.clock()),
            )
        client = self.get(client_id)
        assert client is not None
        return client, secret

    def get(self, client_id: str) -> Client | None:
        """The client, or None when unknown or disabled."""
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM auth_clients WHERE client_id = ? AND disabled = 0",
            (client_id,),
        )
        return _client(rows[0]) if rows else None

    def list(self) -> list[Client]:
        rows = self.repo.query(
            f"SELECT {_COLUMNS} FROM auth_clients WHERE disabled = 0 ORDER BY client_id"
        )
        return [_client(r) for r in rows]

    def remove(self, client_id: str) -> None:
        """Delete the client; its tokens stop working at once (request authentication
        requires the client to exist)."""
        if self.get(client_id) is None:
            raise FhirError(Category.NOT_FOUND, f"no client '{client_id}' / "
                            f"没有客户端“{client_id}”")  # fmt: skip
        with self.repo.transaction() as tx:
            tx.execute("DELETE FROM auth_clients WHERE client_id = ?", (client_id,))
            tx.execute(
                "UPDATE auth_tokens SET revoked_at = ?, revoked_reason = 'client-removed' "
                "WHERE client_id = ? AND revoked_at IS NULL",
                (self.clock(), client_id),
            )

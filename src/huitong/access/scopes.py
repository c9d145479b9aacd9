"""SMART App Launch v2 scopes — https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html

A clinical scope is ``<context>/<type>.<permissions>[?<search restriction>]``:

- ``context`` is ``patient`` (the launch patient's compartment), ``user`` (what the user may
  see) or ``system`` (a backend client);
- ``type`` is an R4 resource type or ``*``;
- ``permissions`` are letters of ``cruds`` in that order (create, read, update, delete,
  search), or a v1 suffix mapped to v2: ``read`` → ``rs``, ``write`` → ``cud``, ``*`` →
  ``cruds``;
- the restriction is a search query (``category=laboratory``) that limits which resources
  the scope covers.

``launch``, ``launch/patient``, ``launch/encounter``, ``openid``, ``fhirUser``, ``profile``,
``offline_access`` and ``online_access`` are flags. Other tokens are kept in
:attr:`ScopeSet.other` (OAuth lets a server ignore scopes it does not know); a token that looks
clinical but is malformed raises :class:`ScopeError`. Parsing is pure; what the scopes grant
is intersected with the role policy in :mod:`huitong.access.policy`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import parse_qsl

from huitong.fhir.definitions import resource_types

__all__ = [
    "INTERACTION_PERMISSION",
    "ResourceScope",
    "ScopeAlternative",
    "ScopeError",
    "ScopeGrant",
    "ScopeSet",
    "parse_scope",
    "parse_scopes",
]

Context = Literal["patient", "user", "system"]

# Which permission letter each FHIR interaction needs (scopes page, "v2 scope syntax").
INTERACTION_PERMISSION: dict[str, str] = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "search-type": "s",
    "search-system": "s",
    "search-compartment": "s",
    "history-type": "s",
    "history-system": "s",
    "operation-everything": "s",  # Patient/$everything is a search over the compartment
}

_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_CLINICAL = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perm>[a-z*]+)"
    r"(?:\?(?P<query>.*))?$"
)
_LOOKS_CLINICAL = re.compile(r"^(patient|user|system)/")
_FLAGS = {
    "launch": "launch",
    "launch/patient": "launch_patient",
    "launch/encounter": "launch_encounter",
    "openid": "openid",
    "fhirUser": "fhir_user",
    "profile": "profile",
    "offline_access": "offline_access",
    "online_access": "online_access",
}


class ScopeError(ValueError):
    """A malformed clinical scope (OAuth ``invalid_scope``), with the reason in both languages."""

    def __init__(self, scope: str, en: str, zh: str) -> None:
        self.scope, self.en, self.zh = scope, en, zh
        super().__init__(f"{scope!r}: {en}")


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """One clinical scope. ``permissions`` is a subset of ``cruds``; ``restriction`` the
    search parameters (name, value) that every covered resource must match."""

    context: Context
    resource_type: str  # an R4 resource type, or "*"
    permissions: frozenset[str]
    restriction: tuple[tuple[str, str], ...] = ()
    v1: bool = False
    text: str = ""

    def covers(self, permission: str, resource_type: str) -> bool:
        return permission in self.permissions and self.resource_type in ("*", resource_type)


def parse_scope(token: str) -> ResourceScope | str:
    """A clinical :class:`ResourceScope`, or the token itself for a non-clinical scope;
    :class:`ScopeError` for a malformed clinical one."""
    if not _LOOKS_CLINICAL.match(token):
        return token
    m = _CLINICAL.match(token)
    if m is None:
        raise ScopeError(
            token,
            "Expected <patient|user|system>/<ResourceType or *>.<cruds>.",
            "应为 <patient|user|system>/<资源类型或 *>.<cruds> 格式。",
        )
    rtype, perm, query = m["type"], m["perm"], m["query"]
    if rtype != "*" and rtype not in resource_types():
        raise ScopeError(token, f"{rtype} is not a FHIR R4 resource type.",
                         f"{rtype} 不是 FHIR R4 资源类型。")  # fmt: skip
    v1 = perm in _V1
    letters = _V1.get(perm, perm)
    if (
        not letters
        or any(c not in "cruds" for c in letters)
        or letters != "".join(c for c in "cruds" if c in letters)
    ):
        raise ScopeError(
            token,
            "Permissions are letters of 'cruds', each at most once and in that order "
            "(or v1 'read', 'write', '*').",
            "权限须为 'cruds' 中的字母，每个至多一次且按此顺序（或 v1 的 'read'、'write'、'*'）。",
        )
    restriction: tuple[tuple[str, str], ...] = ()
    if query is not None:
        if v1:
            raise ScopeError(token, "v1 scopes cannot carry search restrictions.",
                             "v1 权限范围不能带搜索限制。")  # fmt: skip
        try:
            pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=True)
        except ValueError:
            pairs = []
        if not pairs:
            raise ScopeError(token, "The search restriction after '?' is empty or malformed.",
                             "'?' 之后的搜索限制为空或格式错误。")  # fmt: skip
        restriction = tuple(sorted(pairs))
    return ResourceScope(
        context=m["ctx"],  # type: ignore[arg-type]
        resource_type=rtype,
        permissions=frozenset(letters),
        restriction=restriction,
        v1=v1,
        text=token,
    )


@dataclass(frozen=True, slots=True)
class ScopeAlternative:
    """One way a request is covered: in ``context``, limited by ``restriction`` (empty: not
    limited). A request is allowed if any alternative of its :class:`ScopeGrant` applies."""

    context: Context
    restriction: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ScopeGrant:
    """What the scopes grant for one interaction on one type; ``scopes`` are the granting
    scope strings (for the decision's reason)."""

    alternatives: tuple[ScopeAlternative, ...]
    scopes: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return bool(self.alternatives)


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """A parsed, space-separated scope string."""

    resources: tuple[ResourceScope, ...] = ()
    launch: bool = False
    launch_patient: bool = False
    launch_encounter: bool = False
    openid: bool = False
    fhir_user: bool = False
    profile: bool = False
    offline_access: bool = False
    online_access: bool = False
    other: tuple[str, ...] = field(default=())

    def grant(self, interaction: str, resource_type: str) -> ScopeGrant:
        """Which scopes cover ``interaction`` (a key of :data:`INTERACTION_PERMISSION`) on
        ``resource_type``. Within one context an unrestricted scope makes the restricted ones
        redundant (scopes add up; they never subtract)."""
        # pure, and asked several times per request with the same few arguments
        return _grant(self, interaction, resource_type)

    def _grant(self, interaction: str, resource_type: str) -> ScopeGrant:
        permission = INTERACTION_PERMISSION.get(interaction)
        if permission is None:
            raise ValueError(f"unknown interaction {interaction!r}")
        matching = [s for s in self.resources if s.covers(permission, resource_type)]
        by_context: dict[str, set[tuple[tuple[str, str], ...]]] = {}
        for s in matching:
            by_context.setdefault(s.context, set()).add(s.restriction)
        alternatives = []
        for ctx in ("patient", "user", "system"):
            restrictions = by_context.get(ctx)
            if restrictions is None:
                continue
            if () in restrictions:
                alternatives.append(ScopeAlternative(ctx))  # type: ignore[arg-type]
            else:
                alternatives.extend(
                    ScopeAlternative(ctx, r)  # type: ignore[arg-type]
                    for r in sorted(restrictions)
                )
        return ScopeGrant(tuple(alternatives), tuple(s.text for s in matching))

    def allows(self, interaction: str, resource_type: str) -> bool:
        """Do the scopes permit ``interaction`` on ``resource_type`` at all (restrictions
        still apply: see :meth:`grant`)?"""
        return self.grant(interaction, resource_type).allowed

    def contexts(self) -> frozenset[str]:
        return frozenset(s.context for s in self.resources)


@lru_cache(maxsize=16384)
def _grant(scopes: ScopeSet, interaction: str, resource_type: str) -> ScopeGrant:
    return scopes._grant(interaction, resource_type)


def parse_scopes(text: str) -> ScopeSet:
    """Parse a space-separated OAuth ``scope`` value; :class:`ScopeError` on a malformed
    clinical scope."""
    resources: list[ResourceScope] = []
    flags: dict[str, bool] = {}
    other: list[str] = []
    for token in text.split():
        parsed = parse_scope(token)
        if isinstance(parsed, ResourceScope):
            if parsed not in resources:
                resources.append(parsed)
        elif parsed in _FLAGS:
            flags[_FLAGS[parsed]] = True
        elif parsed not in other:
            other.append(parsed)
    return ScopeSet(tuple(resources), other=tuple(other), **flags)

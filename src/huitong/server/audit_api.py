"""The audit-log API under ``/api/audit`` (JSON; one entry also as a FHIR AuditEvent).

    GET  /api/audit/entries?patient=&user=&action=&since=&before=&_count=
                                      entries, newest first (auditors: all; patients: only
                                      entries about their own records — "who accessed my
                                      record, when, from which organization and why")
    GET  /api/audit/entries/{index}?size=    one entry, its exact bytes and its RFC 9162
                                      inclusion proof in the tree of ``size`` entries
                                      (default: the latest signed checkpoint)
    GET  /api/audit/entries/{index}/AuditEvent   the entry as a FHIR R4 AuditEvent
    GET  /api/audit/consistency?first=&second=   RFC 9162 consistency proof
    GET  /api/audit/checkpoint        the latest signed tree head and the public key
    POST /api/audit/checkpoint        sign a new tree head now (auditors, operators)
    GET  /api/audit/keys              every checkpoint key the log has used (``keyId``,
                                      PEM, created, retired, current): a checkpoint names
                                      its ``keyId``; keys rotated out stay listed

Hashes and signatures are standard base64. With authentication on every call needs a
bearer token; reading entries is itself audited (``audit-read``). A patient sees only their
own patient ids in an entry, never its query, resources or other people (a search that
returned several patients' data is shown to each of them without the others), and gets
proofs only for entries about them alone (the exact bytes would name the others).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from huitong.access.principal import Principal, Role
from huitong.audit.auditevent import to_audit_event
from huitong.audit.entry import AccessBasis, AuditEntry, BasisKind
from huitong.audit.recording import actor_of
from huitong.audit.service import AuditService, StoredEntry
from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Category, FhirError
from huitong.server.api_support import api_endpoint, json_response

__all__ = ["audit_routes", "audit_worker", "entry_view"]

log = logging.getLogger("huitong.audit")

_MAX_COUNT = 200
_OPERATORS = frozenset({Role.AUDITOR, Role.PLATFORM_ADMIN, Role.SYSTEM})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise FhirError(Category.INVALID,
                        f"{name} must be a non-negative integer / {name} 须为非负整数")  # fmt: skip
    return int(raw)


_ACTION_ZH = {
    "read": "查看", "vread": "查看历史版本", "search-type": "检索", "search-system": "检索",
    "history-instance": "查看历史", "history-type": "查看历史", "history-system": "查看历史",
    "create": "新建", "update": "更新", "patch": "修改", "delete": "删除",
    "transaction": "提交事务", "batch": "批量操作", "operation": "执行操作",
    "login": "登录", "login-failed": "登录失败", "token-issued": "签发令牌", "logout": "注销",
    "consent-change": "变更同意书", "break-glass": "紧急访问", "audit-read": "查看审计日志",
    "share-code-issued": "生成共享码", "share-code-redeemed": "使用共享码", "export": "导出",
    "message-read": "查看接入消息", "message-reprocess": "重新处理接入消息",
}  # fmt: skip

_BASIS_ZH = {
    "role": "角色权限", "consent": "患者同意", "break-glass": "紧急访问（破窗）",
    "share-code": "患者共享码", "referral": "转诊", "scope": "系统授权范围", "denied": "被拒绝",
}  # fmt: skip


def entry_view(stored: StoredEntry, own_patients: frozenset[str] | None = None) -> dict[str, Any]:
    """An entry for people: ids and codes plus a one-line summary in English and Chinese.
    ``own_patients`` (a patient's view) keeps only those patient ids and hides the rest."""
    e = stored.entry
    mine = sorted(set(e.patients) & own_patients) if own_patients is not None else []
    # a patient is shown the ground on which *their* record was reached
    a, b = e.actor, e.basis_for(mine[0]) if mine else e.basis
    actor = {k: v for k, v in (("role", a.role), ("organization", a.organization),
                               ("practitioner", a.practitioner)) if v}  # fmt: skip
    if own_patients is None:
        actor.update({k: v for k, v in (("user", a.user), ("client", a.client),
                                        ("address", a.address)) if v})  # fmt: skip
    basis = _basis_view(b)
    when = format_instant(e.recorded)
    who_en = a.role + (f" at Organization/{a.organization}" if a.organization else "")
    who_zh = a.role + (f"（机构 Organization/{a.organization}）" if a.organization else "")
    why = b.code + (f" {b.ref}" if b.ref else "")
    view: dict[str, Any] = {
        "seq": stored.seq, "index": stored.index, "recorded": when, "action": e.action,
        "outcome": e.outcome.value, "actor": actor, "basis": basis, "purpose": e.purpose,
        "summary": {
            "en": f"{when}: {who_en} — {e.action} ({e.outcome.value}); basis: "
                  f"{b.kind.value} {why}",
            "zh": f"{when}：{who_zh} — {_ACTION_ZH.get(e.action, e.action)}"
                  f"（{e.outcome.value}）；依据：{_BASIS_ZH.get(b.kind.value, b.kind.value)} {why}",
        },
    }  # fmt: skip
    if own_patients is None:
        view.update({k: v for k, v in (
            ("resourceType", e.resource_type), ("resources", list(e.resources)),
            ("patients", list(e.patients)), ("query", e.query), ("detail", e.detail),
            ("request", e.request_id)) if v})  # fmt: skip
        if e.access:  # patients reached on different grounds: each one's
            view["access"] = [{"patient": x.patient, **_basis_view(x.basis)} for x in e.access]
    else:
        view["patients"] = mine
    return view


def _basis_view(b: AccessBasis) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in (("kind", b.kind.value), ("code", b.code),
                                            ("ref", b.ref), ("justification", b.justification))
                           if v}  # fmt: skip
    if b.until is not None:
        out["until"] = format_instant(b.until)
    return out


def audit_routes(service: AuditService, auth: Any = None) -> list[Route]:
    """The routes; ``auth`` is the authorization server (None: authentication off)."""

    async def principal_of(request: Request) -> Principal | None:
        if auth is None:
            return None
        from huitong.server.authn import authenticate_request

        principal = await run_in_threadpool(authenticate_request, request, auth)
        if principal is None:
            raise FhirError(
                Category.UNAUTHORIZED,
                "This API requires an OAuth 2 bearer token / 需要提供 OAuth 2 访问令牌",
            )
        return principal  # type: ignore[no-any-return]

    def reader_scope(principal: Principal | None) -> frozenset[str] | None:
        """None: may read everything; else the patient ids the caller may read about."""
        if principal is None or principal.role in (Role.AUDITOR, Role.SYSTEM):
            return None
        if principal.role is Role.PATIENT and principal.patient_ids:
            return principal.patient_ids
        raise FhirError(
            Category.FORBIDDEN,
            "Only auditors read the audit log; patients see the entries about their own "
            "record / 只有审计员可以读取审计日志；患者可查看与本人记录有关的条目",
        )

    def audit_read(principal: Principal | None, request: Request, patients: Any) -> None:
        address = request.client.host if request.client else None
        service.record_event(
            "audit-read", actor=actor_of(principal, address),
            basis=AccessBasis(BasisKind.ROLE, "patient-own-access-log"
                              if principal is not None and principal.role is Role.PATIENT
                              else "auditor-audit-log"),
            patients=tuple(patients or ()), purpose="HOPERAT",
        )  # fmt: skip

    async def entries(request: Request) -> Response:
        principal = await principal_of(request)
        own = reader_scope(principal)
        q = request.query_params
        count = min(_int(request, "_count", 50) or 50, _MAX_COUNT)
        wanted = [p for p in q.get("patient", "").split(",") if p]
        if own is not None:
            if any(p not in own for p in wanted):
                raise FhirError(
                    Category.FORBIDDEN,
                    "Patients may see only their own record / 患者只能查看本人的记录",
                )
            wanted = wanted or sorted(own)

        def run() -> list[StoredEntry]:
            found = service.entries(
                patient_ids=wanted, actor_user=q.get("user") if own is None else None,
                action=q.get("action") or None, since=_int(request, "since"),
                before_seq=_int(request, "before"), count=count,
            )  # fmt: skip
            audit_read(principal, request, wanted if own is not None else ())
            return found

        found = await run_in_threadpool(run)
        body: dict[str, Any] = {"entries": [entry_view(s, own) for s in found]}
        if len(found) == count:
            body["next"] = f"before={found[-1].seq}"
        return json_response(body)

    async def one(request: Request) -> Response:
        principal = await principal_of(request)
        own = reader_scope(principal)
        index = int(request.path_params["index"])

        def run() -> dict[str, Any]:
            service.sequence_all()
            stored = service.entry_at(index)
            if own is not None and (not stored.entry.patients
                                    or not set(stored.entry.patients) <= own):  # fmt: skip
                raise FhirError(
                    Category.NOT_FOUND, f"no audit entry #{index} / 没有第 {index} 条审计记录"
                )
            latest = service.latest_checkpoint()
            size = _int(request, "size")
            if size is None:
                size = (
                    latest.checkpoint.size
                    if latest and latest.checkpoint.size > index
                    else service.checkpoint().checkpoint.size
                )
            proof = service.inclusion_proof(index, size)
            audit_read(principal, request, stored.entry.patients if own is not None else ())
            out: dict[str, Any] = {
                "entry": entry_view(stored, own),
                "bytes": _b64(stored.data),
                "size": size,
                "root": _b64(service.root(size)),
                "inclusionProof": [_b64(h) for h in proof],
            }
            cp = service.latest_checkpoint()
            if cp is not None and cp.checkpoint.size == size:
                out["checkpoint"] = cp.to_text()
            return out

        return json_response(await run_in_threadpool(run))

    async def as_audit_event(request: Request) -> Response:
        principal = await principal_of(request)
        own = reader_scope(principal)
        index = int(request.path_params["index"])

        def run() -> dict[str, Any]:
            stored = service.entry_at(index)
            if own is not None and not set(stored.entry.patients) & own:
                raise FhirError(
                    Category.NOT_FOUND, f"no audit entry #{index} / 没有第 {index} 条审计记录"
                )
            entry: AuditEntry = stored.entry
            audit_read(principal, request, sorted(set(entry.patients) & own) if own else ())
            return to_audit_event(entry, id=str(index))

        event = await run_in_threadpool(run)
        return Response(json_response(event).body, 200, media_type="application/fhir+json")

    async def consistency(request: Request) -> Response:
        await principal_of(request)
        first = _int(request, "first")
        second = _int(request, "second")
        if first is None or second is None:
            raise FhirError(
                Category.INVALID, "first and second are required / 须提供 first 与 second"
            )

        def run() -> dict[str, Any]:
            service.sequence_all()
            proof = service.consistency_proof(first, second)
            return {"first": first, "second": second, "firstRoot": _b64(service.root(first)),
                    "secondRoot": _b64(service.root(second)),
                    "consistencyProof": [_b64(h) for h in proof]}  # fmt: skip

        return json_response(await run_in_threadpool(run))

    def checkpoint_body(issue: bool) -> dict[str, Any]:
        cp = service.checkpoint() if issue else (service.latest_checkpoint()
                                                 or service.checkpoint())  # fmt: skip
        c = cp.checkpoint
        return {"origin": c.origin, "size": c.size, "root": _b64(c.root),
                "timestamp": format_instant(c.timestamp), "keyId": cp.key_id,
                "signature": _b64(cp.signature), "text": cp.to_text(),
                # the key this checkpoint names (an older one right after a rotation)
                "publicKey": service.public_key_pem(cp.key_id)}  # fmt: skip

    async def checkpoint(request: Request) -> Response:
        if request.method == "POST":
            principal = await principal_of(request)
            if principal is not None and principal.role not in _OPERATORS:
                raise FhirError(
                    Category.FORBIDDEN,
                    "Only auditors and operators issue checkpoints / "
                    "只有审计员和运维人员可以签发检查点",
                )
        return json_response(await run_in_threadpool(checkpoint_body, request.method == "POST"))

    async def keys(request: Request) -> Response:
        # public, like the key in GET /api/audit/checkpoint: anyone may check a checkpoint
        found = await run_in_threadpool(service.published_keys)
        return json_response({"keys": [
            {**k, "created": format_instant(k["created"]),
             "retired": None if k["retired"] is None else format_instant(k["retired"])}
            for k in found
        ]})  # fmt: skip

    def wrap(work: Callable[[Request], Awaitable[Response]]) -> Any:
        return api_endpoint(work, None, what=("the audit API", "审计接口"))

    return [
        Route("/api/audit/entries", wrap(entries), methods=["GET"]),
        Route("/api/audit/entries/{index:int}", wrap(one), methods=["GET"]),
        Route("/api/audit/entries/{index:int}/AuditEvent", wrap(as_audit_event), methods=["GET"]),
        Route("/api/audit/consistency", wrap(consistency), methods=["GET"]),
        Route("/api/audit/checkpoint", wrap(checkpoint), methods=["GET", "POST"]),
        Route("/api/audit/keys", wrap(keys), methods=["GET"]),
    ]


async def audit_worker(service: AuditService, stop: asyncio.Event,
                       checkpoint_seconds: int = 300) -> None:  # fmt: skip
    """The server's sequencer: gives committed entries their tree positions within a
    fraction of a second, and signs a checkpoint every ``checkpoint_seconds`` when the log
    grew. Several workers may run it: the log's lock serialises them."""
    loop = asyncio.get_running_loop()
    next_checkpoint = loop.time() + min(checkpoint_seconds, 5)
    while not stop.is_set():
        done = 0
        try:
            done = await run_in_threadpool(service.sequence)
            if loop.time() >= next_checkpoint:
                await run_in_threadpool(service.checkpoint)
                next_checkpoint = loop.time() + checkpoint_seconds
        except FhirError as err:  # database away: keep trying, quietly
            log.warning("audit sequencer: %s", err.category.value)
        except Exception:
            log.exception("audit sequencer failed")
        if done:
            continue  # more may be waiting
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.25)

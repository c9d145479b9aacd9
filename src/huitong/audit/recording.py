"""Auditing every FHIR interaction: who did what to whose record, why, and with what result.

One :class:`AuditRecorder` per server. It works at three points:

- **the request** (:meth:`AuditRecorder.run`, called by ``server/app.py`` in the worker
  thread instead of the handler): a :class:`RequestScope` in a context variable carries the
  actor (from the authenticated principal, or an anonymous local actor with authentication
  off), the interaction and the query down to the store hooks below;
- **the write transaction**: a write hook notes each resource written and the patients whose
  compartment it is in; a commit hook then inserts *one* audit entry for the transaction,
  before it commits — so the action and its entry commit together or not at all. A write
  with no request (the HL7 v2 retry worker, a feed) is recorded with the platform's own
  ``system`` actor;
- **reads**: the repository handlers see is wrapped (:class:`ReadRecordingRepository`,
  under the authorization view, so it notes exactly the rows the principal was shown);
  after the handler the resources read and their patients are appended in their own
  transaction *before* the response is sent. If that append fails the request fails:
  no unaudited data leaves. Searches therefore record every patient whose data the page
  returned (matches and includes).

A refused or failed request is recorded as a failure entry (its category, never its message:
messages can quote the data). The access basis of the entry is the policy's decision reason
(:func:`huitong.access.policy.decide`): own record, care relationship, the system client's
scopes. For a clinician it is precise per patient touched: the organization's own patient,
the referral, the Consent (by id), the share code or the break-glass session that admitted
that patient — from the facts the request's restriction read (access/sql.py), or, where it
read none (SQLite, reads inside a transaction), from one statement for all the patients
the entry names; never a query per row. When patients were reached on different grounds the
entry lists each (``access``); when one ground covers them all it is the entry's basis.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from huitong.access.decision import Reason
from huitong.access.events import AuthEvent
from huitong.access.policy import PolicySettings, decide
from huitong.access.principal import Principal, Role
from huitong.access.scopes import INTERACTION_PERMISSION
from huitong.access.sql import Explanation, explain_patients
from huitong.audit.compartment import patients_of
from huitong.audit.entry import (
    AccessBasis,
    Actor,
    AuditEntry,
    BasisKind,
    Outcome,
    PatientBasis,
)
from huitong.audit.service import AuditService
from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import CATEGORY_INFO, Category, FhirError
from huitong.fhir.search.model import SearchQuery
from huitong.store.repository import (
    HistoryPage,
    Repository,
    SearchPage,
    StoredResource,
    Transaction,
)

__all__ = [
    "ANONYMOUS",
    "PLATFORM",
    "AuditRecorder",
    "ReadRecordingRepository",
    "RequestScope",
    "actor_of",
    "current_scope",
]

log = logging.getLogger("huitong.audit")

# Authentication off (local development): nobody is known, the entry still says so.
ANONYMOUS = Actor(role="anonymous")
# Writes with no request behind them: the integration engine's workers, feeds, the loader.
PLATFORM = Actor(role="system", client="huitong")
_AUTH_OFF = AccessBasis(BasisKind.ROLE, "authentication-off")
_PLATFORM_BASIS = AccessBasis(BasisKind.ROLE, "platform-internal")

_PURPOSE = {
    Role.PATIENT: "PATRQT", Role.PUBLIC_HEALTH: "PUBHLTH", Role.RESEARCHER: "HRESCH",
    Role.PLATFORM_ADMIN: "HOPERAT", Role.AUDITOR: "HOPERAT",
}  # fmt: skip

_scope: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "huitong_audit_scope", default=None
)


@dataclass(slots=True)
class RequestScope:
    """What one request is, and what it has touched so far (reads not yet recorded)."""

    actor: Actor
    principal: Principal | None
    action: str
    resource_type: str | None
    request_id: str
    query: str | None
    instance: str | None = None  # Type/id of an instance-level request
    request: Any = None  # the FhirRequest (a batch/transaction Bundle's type, once parsed)
    resources: dict[str, None] = field(default_factory=dict)
    patients: dict[str, None] = field(default_factory=dict)
    recorded: int = 0  # entries written for this request so far
    # the restrictions reads ran under, for the facts they read (who admitted whom)
    explainers: dict[int, Any] = field(default_factory=dict)

    def explained_by(self, restrict: Any) -> None:
        if restrict is not None and hasattr(restrict, "explanation"):
            self.explainers.setdefault(id(restrict), restrict)

    def note(self, ref: str, patients: Sequence[str]) -> None:
        self.resources[ref] = None
        for p in patients:
            self.patients[p] = None

    def bundle_action(self) -> str:
        """``transaction`` or ``batch`` for a POST of a Bundle to the base."""
        parsed = getattr(self.request, "parsed", None)
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        return "batch" if kind == "batch" else "transaction"


def current_scope() -> RequestScope | None:
    return _scope.get()


def actor_of(principal: Principal | None, address: str | None = None) -> Actor:
    """The audit actor of ``principal`` (ids only, never names)."""
    if principal is None:
        return _anonymous_at(address)
    return Actor(
        role=principal.role.value, user=principal.user_id, client=principal.client_id,
        organization=principal.organization_id, practitioner=principal.practitioner_id,
        address=address,
    )  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _anonymous_at(address: str | None) -> Actor:
    # One frozen actor per client address (dataclasses.replace per request cost a quarter
    # of building a read's entry with authentication off).
    return dataclasses.replace(ANONYMOUS, address=address)


class _Writes:
    __slots__ = ("patients", "resources")

    def __init__(self) -> None:
        self.resources: dict[str, None] = {}
        self.patients: dict[str, None] = {}


class AuditRecorder:
    """Connects :class:`~huitong.audit.service.AuditService` to the request path (see the
    module docstring). ``local_base`` is the server's FHIR base (for patient references);
    ``request_ids`` mints request ids (injected; separate from resource ids so auditing never
    shifts the ids a repository hands out)."""

    def __init__(
        self,
        service: AuditService,
        *,
        local_base: str | None = None,
        request_ids: Callable[[], str] | None = None,
    ) -> None:
        self.service = service
        self.local_base = local_base
        # the region's policy (server/app.py sets it): the opt-out default is a basis too
        self.policy = PolicySettings()
        self._request_ids = request_ids or (lambda: uuid.uuid4().hex)
        self._writes: weakref.WeakKeyDictionary[Any, _Writes] = weakref.WeakKeyDictionary()

    # -- installation --------------------------------------------------------------
    def install(self, repo: Repository) -> None:
        """Hook every write of ``repo``: entries commit with the resources they record."""
        repo.add_write_hook("audit", sorted(resource_types()), self._on_write)
        repo.add_commit_hook("audit", self._on_commit)

    def reading_view(self, repo: Repository) -> ReadRecordingRepository:
        return ReadRecordingRepository(repo, self)

    def _patients(self, resource: dict[str, Any]) -> list[str]:
        return patients_of(resource, local_base=self.local_base)

    def _on_write(
        self, tx: Transaction, stored: StoredResource, content: dict[str, Any] | None
    ) -> None:
        writes = self._writes.get(tx)
        if writes is None:
            writes = self._writes[tx] = _Writes()
        writes.resources[stored.reference] = None
        for p in self._patients(content if content is not None else stored.resource):
            writes.patients[p] = None

    def _on_commit(self, tx: Transaction) -> None:
        writes = self._writes.pop(tx, None)
        if writes is None:
            return
        scope = _scope.get()
        if scope is None:
            entry = AuditEntry(
                recorded=self.service.clock(), action="transaction", actor=PLATFORM,
                basis=_PLATFORM_BASIS, resources=tuple(writes.resources),
                patients=tuple(writes.patients), purpose="HOPERAT",
            )  # fmt: skip
        else:
            # Reads made before this commit (a transaction's GET entries, conditional
            # matches) go into the same entry.
            resources = {**scope.resources, **writes.resources}
            patients = {**scope.patients, **writes.patients}
            scope.resources.clear()
            scope.patients.clear()
            entry = self._entry(scope, Outcome.SUCCESS, tuple(resources), tuple(patients))
        self.service.record(tx, entry)
        if scope is not None:
            scope.recorded += 1

    # -- the request ---------------------------------------------------------------
    def run(
        self,
        interaction: Any,
        ctx: Any,
        req: Any,
        principal: Principal | None,
        address: str | None = None,
    ) -> Any:
        """Run ``interaction.handler(ctx, req)`` audited (in the worker thread)."""
        action = _action_of(interaction)
        if action is None:  # the CapabilityStatement: public, says nothing about anyone
            return interaction.handler(ctx, req)
        scope = self._scope_for(action, req, principal, address)
        token = _scope.set(scope)
        try:
            try:
                resp = interaction.handler(ctx, req)
            except FhirError as err:
                self._record_failure(scope, err.category)
                raise
            status = getattr(resp, "status", 200)
            if status >= 400:
                self._record_failure(scope, None, status)
            elif scope.resources or scope.recorded == 0:
                self.service.record_now(
                    self._entry(
                        scope, Outcome.SUCCESS, tuple(scope.resources), tuple(scope.patients)
                    )
                )
            return resp
        finally:
            _scope.reset(token)

    def _scope_for(
        self, action: str, req: Any, principal: Principal | None, address: str | None
    ) -> RequestScope:
        """The audit scope of request ``req``: who, what action, on which type or instance,
        with which query."""
        params = req.path_params
        rtype = params.get("type")
        instance = f"{rtype}/{params['id']}" if rtype and params.get("id") else None
        query = "&".join(f"{k}={v}" for k, v in req.params) or None
        return RequestScope(
            actor_of(principal, address), principal, action, rtype, self._request_ids(),
            query, instance, req,
        )  # fmt: skip

    def entry_for(
        self,
        interaction: Any,
        req: Any,
        principal: Principal | None,
        address: str | None = None,
        *,
        read: Sequence[StoredResource] = (),
        failure: Category | None = None,
    ) -> AuditEntry | None:
        """The entry :meth:`run` would append for ``interaction`` had it returned the
        resources ``read`` (or failed with ``failure``), for a caller that runs a read
        itself (the server answers reads by id on its event loop) and appends the entry
        with :meth:`AuditService.record` before the data leaves. None when not audited."""
        action = _action_of(interaction)
        if action is None:
            return None
        scope = self._scope_for(action, req, principal, address)
        if failure is not None:
            return self._failure_entry(scope, failure)
        for stored in read:
            scope.note(stored.reference, self._patients(stored.resource))
        return self._entry(scope, Outcome.SUCCESS, tuple(scope.resources), tuple(scope.patients))

    def _record_failure(self, scope: RequestScope, category: Category | None,
                        status: int = 0) -> None:  # fmt: skip
        entry = self._failure_entry(scope, category, status)
        try:
            self.service.record_now(entry)
        except Exception:  # the request is failing anyway; its own error goes back
            log.warning("audit: could not record a failed %s (request %s)", scope.action,
                        scope.request_id)  # fmt: skip

    def _failure_entry(self, scope: RequestScope, category: Category | None,
                       status: int = 0) -> AuditEntry:  # fmt: skip
        if category is not None:
            status = CATEGORY_INFO[category].status if category in CATEGORY_INFO else 500
        outcome = Outcome.MINOR_FAILURE if status < 500 else Outcome.SERIOUS_FAILURE
        patients: tuple[str, ...] = ()
        if scope.instance and scope.instance.startswith("Patient/"):
            patients = (scope.instance.split("/", 1)[1],)  # someone tried this record
        return self._entry(
            scope, outcome, (scope.instance,) if scope.instance else (), patients,
            denied=category is Category.FORBIDDEN,
            detail=category.value if category is not None else f"status {status}",
        )  # fmt: skip

    def _entry(
        self,
        scope: RequestScope,
        outcome: Outcome,
        resources: tuple[str, ...],
        patients: tuple[str, ...],
        *,
        denied: bool = False,
        detail: str | None = None,
    ) -> AuditEntry:
        action = scope.bundle_action() if scope.action == "bundle" else scope.action
        now = self.service.clock()
        basis, purpose = _basis(scope.principal, action, scope.resource_type, patients, now,
                                denied=denied)  # fmt: skip
        access: tuple[PatientBasis, ...] = ()
        if outcome is Outcome.SUCCESS and not denied and action not in _WRITES:
            each = self._patient_bases(scope, patients, now)
            grounds = set(each.values())
            if len(grounds) == 1 and len(each) == len(set(patients)):
                basis = next(iter(grounds))  # one ground for every patient: the entry's
                if basis.kind is BasisKind.BREAK_GLASS:
                    purpose = "ETREAT"
            else:
                access = tuple(PatientBasis(p, b) for p, b in each.items() if b != basis)
        return AuditEntry(
            recorded=now, action=action, actor=scope.actor, basis=basis, outcome=outcome,
            request_id=scope.request_id, resource_type=scope.resource_type,
            resources=resources, patients=patients, purpose=purpose, query=scope.query,
            detail=detail, access=access,
        )  # fmt: skip

    def _patient_bases(self, scope: RequestScope, patients: Sequence[str],
                       now: int) -> dict[str, AccessBasis]:  # fmt: skip
        """What admitted each patient a clinician's request touched (see the module
        docstring); patients nothing explains are left out (the entry's basis stands)."""
        p = scope.principal
        if p is None or p.role is not Role.CLINICIAN or not patients:
            return {}
        known = [e for r in scope.explainers.values() if (e := r.explanation()) is not None]
        missing = set(patients)
        if not known and (p.organization_id or p.practitioner_id):
            resolve = getattr(self.service.repo, "access_query", None)
            if resolve is not None:  # no facts were read ahead: one statement for all
                known = [explain_patients(
                    resolve, self.service.repo.dialect, sorted(missing),
                    organization_id=p.organization_id, practitioner_id=p.practitioner_id,
                    at=now, default_permit=self.policy.consent_default == "opt-out",
                )]  # fmt: skip
        out: dict[str, AccessBasis] = {}
        for pid in sorted(missing):
            reason = _first(known, pid, limited=False) or _granted(p, pid, now) or _first(
                known, pid, limited=True)  # fmt: skip
            if reason is not None:
                out[pid] = reason
        return out

    # -- exports -----------------------------------------------------------------------
    def export_recorder(self, code: str) -> Callable[[Any, str], None]:
        """``record(request, detail)`` for an API that hands data out as a document (a
        report file): an ``export`` entry (IHE BALP Export; DICOM 110106) by the request's
        principal — ``request.state.principal``, set by the operator check — appended
        before the document leaves (if that fails, the request fails). ``code`` names the
        export in the entry's basis; ``detail`` what was exported, never its content."""

        def record(request: Any, detail: str) -> None:
            principal = getattr(request.state, "principal", None)
            address = request.client.host if request.client else None
            role = principal.role.value if principal is not None else "anonymous"
            self.service.record_event(
                "export", actor=actor_of(principal, address),
                basis=AccessBasis(BasisKind.ROLE, code if principal is not None
                                  else "authentication-off"),
                purpose=_PURPOSE.get(principal.role, "HOPERAT") if principal else "HOPERAT",
                detail=f"{detail} (by {role})",
            )  # fmt: skip

        return record

    # -- the operator APIs -----------------------------------------------------------
    def record_operator_access(
        self,
        request: Any,
        action: str,
        *,
        code: str,
        patients: Sequence[str] = (),
        detail: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
    ) -> None:
        """An operator API that shows or acts on patient data outside FHIR (the integration
        engine's stored messages, ``server/ingest_api.py``): one entry by the request's
        principal — ``request.state.principal``, set by the operator check; anonymous with
        authentication off — naming the ``patients`` concerned, appended before the response
        leaves (if that fails, the request fails: no unaudited data leaves). ``code`` names
        the operator function in the entry's basis; ``detail`` what was touched (message
        ids), never its content; the query string is kept as FHIR searches keep theirs."""
        principal = getattr(request.state, "principal", None)
        address = request.client.host if request.client else None
        # the operator check already let the caller in: the basis is their role's function
        basis = _AUTH_OFF if principal is None else AccessBasis(BasisKind.ROLE, code)
        query = request.url.query or None
        self.service.record_now(AuditEntry(
            recorded=self.service.clock(), action=action, actor=actor_of(principal, address),
            basis=basis, outcome=outcome, request_id=self._request_ids(),
            patients=tuple(patients), purpose="HOPERAT", query=query, detail=detail,
        ))  # fmt: skip

    # -- the authorization server's events -------------------------------------------
    def on_auth_event(self, event: AuthEvent) -> None:
        """The ``on_event`` sink of :class:`~huitong.access.service.AuthService`: sign-ins,
        failed sign-ins, tokens issued and revoked."""
        ok = event.outcome == "success"
        if event.kind == "login":
            action = "login" if ok else "login-failed"
        elif event.kind == "token":
            action = "token-issued" if ok else "login-failed"
        elif event.kind == "revoke":
            action = "logout"
        else:
            return
        actor = Actor(role="user" if event.user_id else "client", user=event.user_id,
                      client=event.client_id)  # fmt: skip
        basis = (AccessBasis(BasisKind.ROLE, "authenticated") if ok
                 else AccessBasis(BasisKind.DENIED, event.reason or "failed"))  # fmt: skip
        detail = " ".join(x for x in (event.kind, event.grant_type, event.reason) if x)
        self.service.record_now(AuditEntry(
            recorded=event.at, action=action, actor=actor, basis=basis,
            outcome=Outcome.SUCCESS if ok else Outcome.MINOR_FAILURE, purpose="HOPERAT",
            detail=detail or None,
        ))  # fmt: skip

    def on_consent_event(self, event: Any, tx: Any = None) -> None:
        """The ``on_event`` sink of the consent services
        (:class:`~huitong.access.consent_events.ConsentEvent`): consent changes, break-glass,
        share codes issued, withdrawn and redeemed (refused attempts included). With ``tx``
        the entry commits with the change it records."""
        action = {"share-code-revoked": "consent-change"}.get(event.kind, event.kind)
        refused = event.action == "refused"
        if refused:
            basis = AccessBasis(BasisKind.DENIED, event.reason or "refused")
        elif event.kind == "break-glass":
            basis = AccessBasis(
                BasisKind.BREAK_GLASS,
                "break-glass",
                ref=next(iter(event.resource_ids), None),
                justification=event.reason or None,
                until=event.until,
            )
        elif event.kind.startswith("share-code"):
            basis = AccessBasis(
                BasisKind.SHARE_CODE,
                event.kind,
                ref=next(iter(event.resource_ids), None),
                until=event.until,
            )
        else:
            basis = AccessBasis(
                BasisKind.CONSENT, event.action, ref=next(iter(event.resource_ids), None)
            )
        actor = Actor(
            role=event.actor_role or "user",
            user=event.actor_id,
            organization=event.actor_organization,
        )
        self.service.record_event(
            action,
            actor=actor,
            basis=basis,
            patients=[event.patient_id] if event.patient_id else [],
            resources=list(event.resource_ids),
            outcome=Outcome.MINOR_FAILURE if refused else Outcome.SUCCESS,
            purpose="ETREAT" if event.kind == "break-glass" else "PATRQT",
            detail=f"{event.kind} {event.action}",
            tx=tx,
        )


def _action_of(interaction: Any) -> str | None:
    codes = interaction.codes
    if codes == ("capabilities",):
        return None
    if "transaction" in codes:
        return "bundle"  # transaction or batch: told apart once the body is parsed
    code = codes[0]
    return code


# The access-policy interaction a request's audit basis is decided for.
_DECIDE_AS = {
    "read": "read", "vread": "vread", "search-type": "search-type",
    "search-system": "search-system", "history-instance": "history-instance",
    "history-type": "history-type", "history-system": "history-system", "create": "create",
    "update": "update", "patch": "patch", "delete": "delete",
}  # fmt: skip


# Writes keep the policy's basis (the care relationship the write was decided on).
_WRITES = frozenset({"create", "update", "patch", "delete", "transaction", "batch"})


def _as_basis(reason: Reason) -> AccessBasis:
    try:
        kind = BasisKind(reason.kind)
    except ValueError:
        kind = BasisKind.ROLE
    return AccessBasis(kind, reason.code, ref=reason.ref, justification=reason.justification,
                       until=reason.until)  # fmt: skip


def _first(known: Sequence[Explanation], pid: str, *, limited: bool) -> AccessBasis | None:
    for explanation in known:
        reason = explanation.explain(pid, limited=limited)
        if reason is not None:
            return _as_basis(reason)
    return None


def _granted(principal: Principal, pid: str, now: int) -> AccessBasis | None:
    """The patient's share code or break-glass session open for ``principal`` at ``now``."""
    for grant in principal.share_grants:
        if grant.patient_id == pid and now < grant.until:
            return AccessBasis(BasisKind.SHARE_CODE, "share-code", ref=grant.code_id,
                               until=grant.until)  # fmt: skip
    for glass in principal.break_glass:
        if glass.patient_id == pid and glass.active(now):
            return AccessBasis(BasisKind.BREAK_GLASS, "break-glass", ref=glass.patient_id,
                               justification=glass.justification, until=glass.until)  # fmt: skip
    return None


def _basis(
    principal: Principal | None,
    action: str,
    rtype: str | None,
    patients: tuple[str, ...],
    now: int,
    *,
    denied: bool = False,
) -> tuple[AccessBasis, str]:
    if principal is None:
        return _AUTH_OFF, "TREAT"
    purpose = _PURPOSE.get(principal.role, "TREAT")
    touched = set(patients)
    for glass in principal.break_glass:
        if glass.patient_id in touched and glass.active(now):
            return AccessBasis(
                BasisKind.BREAK_GLASS,
                "break-glass",
                ref=glass.patient_id,
                justification=glass.justification,
                until=glass.until,
            ), "ETREAT"
    for grant in principal.share_grants:
        if grant.patient_id in touched and now < grant.until:
            return AccessBasis(
                BasisKind.SHARE_CODE, "share-code", ref=grant.code_id, until=grant.until
            ), purpose
    as_action = _DECIDE_AS.get(action, "search-type" if rtype else "search-system")
    if rtype == "Patient" and action == "operation":
        as_action = "operation-everything"
    decision_type = rtype if rtype in resource_types() else "Patient"
    if as_action not in INTERACTION_PERMISSION:
        return AccessBasis(BasisKind.ROLE, f"role-{principal.role.value}"), purpose
    reason = decide(principal, as_action, decision_type, now=now).reason
    try:
        kind = BasisKind(reason.kind)
    except ValueError:
        kind = BasisKind.ROLE
    if denied and kind is not BasisKind.DENIED:
        kind = BasisKind.DENIED
    return AccessBasis(kind, reason.code, ref=reason.ref, justification=reason.justification,
                       until=reason.until), purpose  # fmt: skip


# -- the read-recording view ------------------------------------------------------------
class ReadRecordingRepository:
    """``repo`` noting, into the current request's scope, every resource a read returns.
    Outside a request (no scope) it is ``repo``. Everything else passes through."""

    def __init__(self, repo: Repository, recorder: AuditRecorder) -> None:
        self.repo = repo
        self._recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.repo, name)

    def _note(self, stored: Sequence[StoredResource]) -> None:
        scope = _scope.get()
        if scope is None:
            return
        for s in stored:
            scope.note(s.reference, self._recorder._patients(s.resource))

    def _page(self, page: SearchPage) -> SearchPage:
        self._note(page.matches)
        self._note(page.included)
        return page

    def _explained_by(self, kw: dict[str, Any]) -> None:
        scope = _scope.get()
        if scope is not None:
            scope.explained_by(kw.get("restrict"))

    def read(self, resource_type: str, id: str, **kw: Any) -> StoredResource:
        stored = self.repo.read(resource_type, id, **kw)
        self._explained_by(kw)
        self._note((stored,))
        return stored

    def vread(self, resource_type: str, id: str, version_id: int, **kw: Any) -> StoredResource:
        stored = self.repo.vread(resource_type, id, version_id, **kw)
        self._explained_by(kw)
        self._note((stored,))
        return stored

    def history(self, *args: Any, **kw: Any) -> HistoryPage:
        page: HistoryPage = self.repo.history(*args, **kw)
        self._explained_by(kw)
        self._note(page.entries)
        return page

    def search(self, query: SearchQuery, **kw: Any) -> SearchPage:
        page = self.repo.search(query, **kw)
        self._explained_by(kw)
        return self._page(page)

    def everything(self, patient_id: str, **kw: Any) -> SearchPage:
        page = self.repo.everything(patient_id, **kw)
        self._explained_by(kw)
        return self._page(page)

    @contextmanager
    def transaction(self) -> Iterator[_ReadRecordingTransaction]:
        with self.repo.transaction() as tx:
            yield _ReadRecordingTransaction(tx, self)


class _ReadRecordingTransaction:
    def __init__(self, tx: Transaction, view: ReadRecordingRepository) -> None:
        self._tx = tx
        self._view = view

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def read(self, resource_type: str, id: str, **kw: Any) -> StoredResource | None:
        stored = self._tx.read(resource_type, id, **kw)
        if stored is not None and not stored.deleted:
            self._view._note((stored,))
        return stored

    def search(self, query: SearchQuery, **kw: Any) -> SearchPage:
        return self._view._page(self._tx.search(query, **kw))

    def search_many(self, queries: Sequence[SearchQuery]) -> list[SearchPage]:
        return [self._view._page(page) for page in self._tx.search_many(queries)]

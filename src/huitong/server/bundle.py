"""``batch`` and ``transaction`` — https://hl7.org/fhir/R4/http.html#transaction.

POST of a Bundle to the base. The Bundle is planned by :mod:`huitong.server.bundle_plan`
(pure) and run here.

Transaction: all entries in ONE ``repo.transaction()``, in the specification's processing
order (DELETE, POST, PUT/PATCH, GET/HEAD). Before any write, conditional targets are resolved
by searches inside the transaction (``ifNoneExist``, ``PUT``/``PATCH``/``DELETE
Type?criteria``, conditional references such as ``Patient?identifier=x``: none or several
matches is PRECONDITION_FAILED, 412), every ``fullUrl`` is mapped to its final ``Type/id``
and all references are rewritten (a ``urn:uuid:`` reference that matches no ``fullUrl`` in the
Bundle is stored as written). Any failure rolls the whole transaction back; the response
is then the failing entry's OperationOutcome (status from its category) with
``Bundle.entry[i]`` in each issue's ``expression``. Reads (GET) inside a transaction see the
transaction's own writes for read and search; other reads (vread, history, operations) see
committed data only.

Batch: each entry on its own, in Bundle order, through the same handlers as HTTP (each write
in its own transaction); a failure is reported in that entry's ``response.outcome`` and does
not affect the others. A batch entry may not itself be a batch or transaction.

Responses (``transaction-response``/``batch-response``) carry per entry ``response.status``
(``201 Created``), ``location``, ``etag`` and ``lastModified``. Writes are reported minimally
by default; ``Prefer: return=representation`` adds each written resource, and
``Prefer: return=OperationOutcome`` an outcome. GET entries always carry their result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Category, FhirError, Issue
from huitong.fhir.outcome import operation_outcome
from huitong.fhir.search.model import SearchQuery
from huitong.server.bundle_plan import (
    BundlePlan,
    PlannedEntry,
    conditional_reference,
    decode_patch,
    plan_bundle,
    rewrite_references,
)
from huitong.server.errors import error_response, internal_error_response
from huitong.server.interactions.conditional import criteria_query, lock_key, single_match
from huitong.server.interactions.delete import delete_in
from huitong.server.interactions.patch import patch_in
from huitong.server.interactions.update import conditional_update_target, update_in
from huitong.server.request import FhirRequest, ServerContext, parse_etag
from huitong.server.response import FhirResponse, etag, status_line
from huitong.server.result_bundles import query_bundle
from huitong.store.repository import StoredResource, Transaction, WriteOutcome

__all__ = ["at_entry", "conditional_locks", "process_bundle"]


class _AtEntry(Exception):
    """A failure already attributed to an entry other than the one being processed."""

    def __init__(self, error: FhirError, index: int) -> None:
        super().__init__(error.message)
        self.error, self.index = error, index


def process_bundle(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    """POST to the base: run a batch or transaction Bundle."""
    plan = plan_bundle(req.json_body(), base_url=req.base_url, new_id=ctx.new_id)
    prefer = req.prefer().get("return", "minimal")
    if plan.kind == "batch":
        return FhirResponse(200, _run_batch(ctx, req, plan, prefer))
    return FhirResponse(200, _run_transaction(ctx, req, plan, prefer))


# -- entry responses ---------------------------------------------------------------------------
def _written(
    base: str, status: int, stored: StoredResource | None, prefer: str, *, location: bool = True
) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status_line(status)}
    entry: dict[str, Any] = {}
    if stored is not None:
        if location and not stored.deleted:
            response["location"] = (
                f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
            )
        response["etag"] = etag(stored.version_id)
        response["lastModified"] = format_instant(stored.last_updated)
        if prefer == "representation" and not stored.deleted:
            entry["fullUrl"] = f"{base}/{stored.resource_type}/{stored.id}"
            entry["resource"] = orjson.Fragment(stored.json)
        elif prefer == "operationoutcome":
            response["outcome"] = operation_outcome(
                [Issue(f"{stored.reference}: {status_line(status)}", severity="information")]
            )
    entry["response"] = response
    return entry


def _from_response(base: str, resp: FhirResponse) -> dict[str, Any]:
    """A handler's response as a Bundle entry (batch entries and transaction reads)."""
    response: dict[str, Any] = {"status": status_line(resp.status)}
    entry: dict[str, Any] = {}
    if resp.location:
        response["location"] = resp.location
    if resp.stored is not None:
        response["etag"] = etag(resp.stored.version_id)
        response["lastModified"] = format_instant(resp.stored.last_updated)
    if resp.body is not None:
        body = orjson.Fragment(resp.body) if isinstance(resp.body, bytes) else resp.body
        if resp.status >= 400:
            response["outcome"] = body
        else:
            if resp.stored is not None:
                entry["fullUrl"] = f"{base}/{resp.stored.resource_type}/{resp.stored.id}"
            entry["resource"] = body
    entry["response"] = response
    return entry


def at_entry(err: FhirError, index: int) -> FhirError:
    """``err`` re-expressed at ``Bundle.entry[index]`` (same category). An issue's own
    expression, when it has one, moves into its message."""
    where = f"Bundle.entry[{index}]"
    issues = []
    for issue in err.issues or [Issue(err.category.value)]:
        if issue.expression and issue.expression.startswith(where):
            issues.append(issue)
            continue
        message = f"{issue.message} (at {issue.expression})" if issue.expression else issue.message
        issues.append(Issue(message, where, issue.severity, issue.code))
    return FhirError(err.category, issues=issues)


# -- batch -------------------------------------------------------------------------------------
def _sub_request(req: FhirRequest, e: PlannedEntry, prefer: str) -> FhirRequest:
    headers = {"prefer": f"return={prefer}"}
    if e.if_match is not None:
        headers["if-match"] = e.if_match
    if e.if_none_match is not None:
        headers["if-none-match"] = e.if_none_match
    if e.if_none_exist is not None:
        headers["if-none-exist"] = urlencode(e.if_none_exist)
    parsed = decode_patch(e) if e.method == "PATCH" else e.resource
    return FhirRequest(e.method, e.path, list(e.params), headers, b"", req.base_url, parsed)


def _run_batch(
    ctx: ServerContext, req: FhirRequest, plan: BundlePlan, prefer: str
) -> dict[str, Any]:
    from huitong.server.routing import match

    out = []
    for e in plan.entries:
        try:
            if e.error is not None:
                raise e.error
            sub = _sub_request(req, e, prefer)
            interaction, sub.path_params = match(e.method, e.path)
            if "transaction" in interaction.codes:
                raise FhirError(Category.INVALID, "a batch entry cannot be a batch or transaction")
            resp = interaction.handler(ctx, sub)
            if e.method == "HEAD":
                resp.body = None
        except FhirError as err:
            resp = error_response(err)
        except Exception as exc:  # one entry's bug must not sink the others
            resp = internal_error_response(exc, where=f"batch entry {e.index} {e.method}")
        out.append(_from_response(req.base_url, resp))
    return _response_bundle("batch-response", out)


# -- transaction -------------------------------------------------------------------------------
# A conditional search of the bundle: (type, criteria, what the error messages call it).
_Criteria = tuple[str, tuple[tuple[str, str], ...], str]


def _criteria_of(plan: BundlePlan) -> list[_Criteria]:
    """Every conditional search the bundle needs, entries first, then references."""
    out: list[_Criteria] = []
    for e in plan.entries:
        rtype = str(e.resource_type)
        if e.method == "POST" and e.if_none_exist is not None:
            out.append((rtype, tuple(e.if_none_exist), "ifNoneExist"))
        elif e.conditional and e.method == "PUT":
            out.append((rtype, tuple(e.params), "conditional update"))
        elif e.conditional:
            out.append((rtype, tuple(e.params), f"conditional {e.method.lower()}"))
    for node in plan.refs:
        ref = node["reference"]
        parsed = conditional_reference(ref) if "?" in ref else None
        if parsed is not None:
            out.append((parsed[0], tuple(parsed[1]), f"conditional reference {ref}"))
    return out


def _conditional_searches(
    tx: Transaction, plan: BundlePlan
) -> dict[_Criteria, list[StoredResource] | FhirError]:
    """Run the bundle's conditional searches together (one round trip on PostgreSQL for
    the common single-statement criteria such as ``identifier=``), under the locks already
    taken. Criteria that do not parse keep their error, raised when their entry resolves
    (so it is attributed to that entry)."""
    queries: dict[_Criteria, SearchQuery] = {}
    found: dict[_Criteria, list[StoredResource] | FhirError] = {}
    for key in _criteria_of(plan):
        if key in queries or key in found:
            continue
        try:
            queries[key] = criteria_query(key[0], key[1], what=key[2])
        except FhirError as err:
            found[key] = err
    if queries:
        pages = tx.search_many(list(queries.values()))
        for key, page in zip(queries, pages, strict=True):
            found[key] = page.matches
    return found


def _matched(
    found: dict[_Criteria, list[StoredResource] | FhirError], key: _Criteria
) -> list[StoredResource]:
    got = found[key]
    if isinstance(got, FhirError):
        raise got
    return got


def _resolve_targets(
    ctx: ServerContext, tx: Transaction, e: PlannedEntry, mapping: dict[str, str],
    found: dict[_Criteria, list[StoredResource] | FhirError],
) -> None:
    """Settle the target id of a conditional entry (before any write)."""
    rtype = str(e.resource_type)
    if e.method == "POST" and e.if_none_exist is not None:
        what = "ifNoneExist"
        hit = single_match(_matched(found, (rtype, tuple(e.if_none_exist), what)), rtype,
                           what=what)
        e.id = hit.id if hit is not None else ctx.new_id()
        e.exists, e.existing = hit is not None, hit
    elif e.conditional and e.method == "PUT":
        matched = _matched(found, (rtype, tuple(e.params), "conditional update"))
        target = conditional_update_target(tx, rtype, e.params, e.resource.get("id"),
                                           matched=matched)
        e.id = target if target is not None else ctx.new_id()
    elif e.conditional:  # PATCH or DELETE
        what = f"conditional {e.method.lower()}"
        hit = single_match(_matched(found, (rtype, tuple(e.params), what)), rtype, what=what)
        if hit is None and e.method == "PATCH":
            raise FhirError(Category.NOT_FOUND, f"no {rtype} matches the criteria")
        e.id = hit.id if hit is not None else None
    else:
        return
    if e.full_url and e.id is not None and e.method in ("POST", "PUT"):
        mapping[e.full_url] = f"{rtype}/{e.id}"


def _resolve_conditional_references(
    plan: BundlePlan, mapping: dict[str, str],
    found: dict[_Criteria, list[StoredResource] | FhirError],
) -> None:
    for node, owner in zip(plan.refs, plan.ref_owners, strict=True):
        ref = node["reference"]
        if ref in mapping or "?" not in ref:
            continue
        parsed = conditional_reference(ref)
        if parsed is None:
            continue
        what = f"conditional reference {ref}"
        try:
            hit = single_match(_matched(found, (parsed[0], tuple(parsed[1]), what)), parsed[0],
                               what=what)
            if hit is None:
                raise FhirError(
                    Category.PRECONDITION_FAILED,
                    f"conditional reference {ref} matches no resource",
                )
        except FhirError as err:
            raise _AtEntry(err, owner) from None
        mapping[ref] = hit.reference


def _conditional_locks(plan: BundlePlan) -> list[str]:
    """The locks the bundle's conditional entries and references will take, so they are
    taken together (one round trip, one order) before any of them is resolved."""
    return [lock_key(rtype, criteria) for rtype, criteria, _what in _criteria_of(plan)
            if criteria]


def conditional_locks(bundles: Sequence[Any], *, base_url: str = "") -> list[str]:
    """Every lock the transaction Bundles ``bundles`` will take for their conditional
    entries and references, for a caller that writes them all in ONE database transaction
    (the batched HL7 v2 intake): it takes them first, together, in one order. Taken bundle
    by bundle instead, two such groups in two server processes can each hold a key the
    other one waits for — a deadlock, which PostgreSQL breaks only after
    ``deadlock_timeout`` (1 s) by failing one group. A bundle that does not plan is left
    out: its own write fails with the precise error."""
    keys: set[str] = set()
    for bundle in bundles:
        try:
            plan = plan_bundle(bundle, base_url=base_url, new_id=_placeholder_id)
        except FhirError:
            continue
        keys.update(_conditional_locks(plan))
    return sorted(keys)


def _placeholder_id() -> str:
    # Planning for the locks only: the ids it would give new resources are not used.
    return "0"


# The targets the write path reads for every resource that refers to them: the quality
# checks read a resource's Patient (birth date, sex) and its Encounter (institution).
_READ_AHEAD_TYPES = frozenset({"Patient", "Encounter"})


def _read_ahead(plan: BundlePlan) -> list[tuple[str, str]]:
    """The existing Patients and Encounters the bundle's resources refer to (after the
    references are rewritten), read in one statement before the writes instead of one by
    one as each resource is checked."""
    written = {(e.resource_type, e.id) for e in plan.entries if e.is_write}
    out = set()
    for node in plan.refs:
        ref = node["reference"]
        rtype, sep, rid = ref.partition("/")
        if sep and rtype in _READ_AHEAD_TYPES and rid and "/" not in rid and "?" not in rid:
            out.add((rtype, rid))
    return list(out - written)  # the bundle's own writes are read from the transaction


def _rows_to_replace(plan: BundlePlan) -> list[tuple[str, str]]:
    """The existing resources the bundle's updates, patches and deletes will replace (all
    targets are known once conditionals are resolved): locked together before the writes."""
    return [(str(e.resource_type), e.id) for e in plan.entries
            if e.method in ("PUT", "PATCH", "DELETE") and e.id is not None]


def _check_distinct(plan: BundlePlan) -> None:
    seen: dict[tuple[str | None, str], int] = {}
    for e in plan.entries:
        if e.is_write and e.id is not None:
            key = (e.resource_type, e.id)
            if key in seen:
                raise _AtEntry(FhirError(
                    Category.INVALID,
                    f"{e.resource_type}/{e.id} is the target of entries {seen[key]} and "
                    f"{e.index}", code="duplicate",
                ), e.index)
            seen[key] = e.index


def _if_match(e: PlannedEntry) -> int | None:
    return None if e.if_match is None else parse_etag(e.if_match, "ifMatch")


def _write(tx: Transaction, base: str, e: PlannedEntry, prefer: str) -> dict[str, Any]:
    rtype = str(e.resource_type)
    if e.method == "DELETE":
        gone = delete_in(tx, rtype, e.id, if_match=_if_match(e)) if e.id is not None else None
        return _written(base, 204, gone, prefer)
    outcome: WriteOutcome
    if e.method == "POST":
        if e.exists:  # ifNoneExist found it: no write
            return _written(base, 200, e.existing, prefer)
        outcome = tx.create(e.resource, id=e.id)
    elif e.method == "PUT":
        if e.conditional:
            outcome = tx.update({**e.resource, "id": e.id}, if_match=_if_match(e))
        else:
            outcome = update_in(tx, rtype, str(e.id), e.resource, if_match=_if_match(e))
    else:  # PATCH
        outcome = patch_in(tx, rtype, str(e.id), decode_patch(e), if_match=_if_match(e))
    return _written(base, 201 if outcome.created else 200, outcome.stored, prefer)


def _read(ctx: ServerContext, tx: Transaction, req: FhirRequest, e: PlannedEntry
          ) -> dict[str, Any]:
    """GET/HEAD inside the transaction: read and search see its writes."""
    from huitong.server.routing import match

    interaction, params = match(e.method, e.path)
    sub = FhirRequest("GET", e.path, list(e.params), {}, b"", req.base_url,
                      path_params=params)
    if "read" in interaction.codes:
        stored = tx.read(params["type"], params["id"])
        if stored is None:
            raise FhirError(Category.NOT_FOUND, f"{params['type']}/{params['id']} is not known")
        if stored.deleted:
            raise FhirError(Category.GONE, f"{stored.reference} has been deleted")
        resp = FhirResponse(200, stored.json, stored=stored)
    elif "search-type" in interaction.codes and interaction.level == "type":
        from huitong.fhir.search.parse import parse_search

        query = parse_search(
            params["type"], sub.criteria(), default_count=ctx.settings.default_page_size,
            max_count=ctx.settings.max_page_size,
        )
        page = tx.search(query)
        resp = FhirResponse(200, query_bundle(req.base_url, params["type"], query, page,
                                              now=ctx.clock()))
    elif any(c in interaction.codes for c in ("transaction", "create", "update")):
        raise FhirError(Category.INVALID, "not a read")
    else:
        resp = interaction.handler(ctx, sub)
    if e.method == "HEAD":
        resp.body = None
    return _from_response(req.base_url, resp)


def run_transaction(
    ctx: ServerContext,
    bundle: dict[str, Any],
    before_commit: Callable[[Transaction, dict[str, Any]], None] | None = None,
    *,
    base_url: str = "",
) -> dict[str, Any]:
    """Run a ``transaction`` Bundle from another source (HL7 v2, feeds, devices) through
    the same processing as ``POST /fhir``, and return its transaction-response.

    ``before_commit(tx, response)`` runs inside the database transaction after every
    entry succeeded, so a caller's own bookkeeping (the message store marking the message
    processed) commits together with the resources, or not at all.
    """
    plan = plan_bundle(bundle, base_url=base_url, new_id=ctx.new_id)
    if plan.kind != "transaction":
        raise FhirError(Category.INVALID, "expected a transaction Bundle")
    req = FhirRequest("POST", "", base_url=base_url, parsed=bundle)
    return _run_transaction(ctx, req, plan, "minimal", before_commit)


def _run_transaction(
    ctx: ServerContext,
    req: FhirRequest,
    plan: BundlePlan,
    prefer: str,
    before_commit: Callable[[Transaction, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    results: list[dict[str, Any] | None] = [None] * len(plan.entries)
    index = 0
    try:
        with ctx.repo.transaction() as tx:
            mapping = dict(plan.aliases)
            tx.expect_writes(sum(1 for e in plan.entries if e.is_write))
            tx.lock_many(_conditional_locks(plan))
            found = _conditional_searches(tx, plan)
            for e in plan.entries:
                index = e.index
                _resolve_targets(ctx, tx, e, mapping, found)
            _resolve_conditional_references(plan, mapping, found)
            rewrite_references(plan, mapping)
            _check_distinct(plan)
            tx.lock_current(_rows_to_replace(plan))
            tx.prefetch(_read_ahead(plan))
            base = req.base_url
            for i in plan.order:
                index = i
                e = plan.entries[i]
                if e.is_write:
                    results[i] = _write(tx, base, e, prefer)
                else:
                    results[i] = _read(ctx, tx, req, e)
            response = _response_bundle("transaction-response", results)
            if before_commit is not None:
                before_commit(tx, response)
    except _AtEntry as wrapped:
        raise at_entry(wrapped.error, wrapped.index) from None
    except FhirError as err:
        raise at_entry(err, index) from None
    return response


def _response_bundle(kind: str, entries: list[Any]) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle

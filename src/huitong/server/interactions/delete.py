"""FHIR delete and conditional delete — https://hl7.org/fhir/R4/http.html#delete,
https://hl7.org/fhir/R4/http.html#3.1.0.7.1.

Deleting writes a delete version (history keeps every earlier one); a later read is GONE
(410). Success is ``204 No Content`` — also when there was nothing to delete (an unknown
id, or one already deleted), which the specification allows and which makes delete
idempotent. When a delete version was written the response carries its ``ETag``.
``Prefer: return=OperationOutcome`` turns the 204 into a 200 with an informational outcome.

``If-Match: W/"n"`` is PRECONDITION_FAILED (412) unless ``n`` is the current version.

Conditional delete (``DELETE Type?criteria``) supports a single match only: none is a 204
no-op, one is deleted, several are PRECONDITION_FAILED (412).
"""

from __future__ import annotations

from huitong.fhir.errors import Category, FhirError, Issue
from huitong.fhir.outcome import operation_outcome
from huitong.server.interactions.conditional import at_most_one
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse
from huitong.store.repository import StoredResource, Transaction

__all__ = [
    "conditional_delete",
    "conditional_delete_in",
    "delete",
    "delete_in",
    "delete_response",
]


def delete_in(
    tx: Transaction, resource_type: str, id: str, *, if_match: int | None = None
) -> StoredResource | None:
    """Delete inside ``tx``; None when there was nothing to delete."""
    if if_match is not None:
        current = tx.read(resource_type, id)
        version = current.version_id if current is not None else None
        if version != if_match:
            raise FhirError(
                Category.PRECONDITION_FAILED,
                f"version conflict: If-Match {if_match} but current version is {version}",
            )
    return tx.delete(resource_type, id)


def conditional_delete_in(
    tx: Transaction, resource_type: str, criteria: list[tuple[str, str]]
) -> StoredResource | None:
    found = at_most_one(tx, resource_type, criteria, what="conditional delete")
    return tx.delete(resource_type, found.id) if found is not None else None


def delete_response(req: FhirRequest, deleted: StoredResource | None, target: str) -> FhirResponse:
    if req.prefer().get("return") == "operationoutcome":
        text = (
            f"{deleted.reference} deleted (version {deleted.version_id})" if deleted
            else f"nothing to delete at {target}"
        )
        return FhirResponse(
            200, operation_outcome([Issue(text, severity="information")]), stored=deleted
        )
    return FhirResponse(204, stored=deleted)


def delete(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    if_match = req.if_match()
    with ctx.repo.transaction() as tx:
        deleted = delete_in(tx, p["type"], p["id"], if_match=if_match)
    return delete_response(req, deleted, f"{p['type']}/{p['id']}")


def conditional_delete(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    rtype = req.path_params["type"]
    with ctx.repo.transaction() as tx:
        deleted = conditional_delete_in(tx, rtype, req.criteria())
    return delete_response(req, deleted, rtype)

"""FHIR update and conditional update — https://hl7.org/fhir/R4/http.html#update,
https://hl7.org/fhir/R4/http.html#cond-update.

``PUT Type/id``: the body's ``id`` is required and must equal the URL's (INVALID, 400,
otherwise). An unknown id is created with that id (update-as-create: 201); an existing one
gets a new version (200). ``If-Match: W/"n"`` is PRECONDITION_FAILED (412) unless ``n`` is
the current version.

``PUT Type?criteria``: no match creates (an ``id`` in the body is then used, but must not
belong to an existing resource: CONFLICT, 409); one match updates it (a body ``id`` must be
that resource's: INVALID otherwise); several are PRECONDITION_FAILED (412).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huitong.fhir.errors import Category, FhirError
from huitong.server.interactions.conditional import at_most_one, single_match
from huitong.server.request import FhirRequest, ServerContext, require_type
from huitong.server.response import FhirResponse, write_response
from huitong.store.repository import StoredResource, Transaction, WriteOutcome

__all__ = [
    "conditional_update",
    "conditional_update_in",
    "conditional_update_target",
    "update",
    "update_in",
]


def update_in(
    tx: Transaction, resource_type: str, id: str, resource: dict[str, Any], *,
    if_match: int | None = None,
) -> WriteOutcome:
    require_type(resource, resource_type)
    body_id = resource.get("id")
    if body_id is None:
        raise FhirError(
            Category.INVALID, "the resource must carry its id for update",
            expression=f"{resource_type}.id", code="required",
        )
    if body_id != id:
        raise FhirError(
            Category.INVALID, f"the body's id ({body_id}) does not match the URL's ({id})",
            expression=f"{resource_type}.id", code="value",
        )
    return tx.update(resource, if_match=if_match)


def conditional_update_target(
    tx: Transaction, resource_type: str, criteria: Sequence[tuple[str, str]],
    body_id: object, *, matched: Sequence[StoredResource] | None = None,
) -> str | None:
    """The id a conditional update writes to, or None when it creates with a server id.
    ``matched``: the criteria's search result when the caller already ran it (under the
    criteria's lock)."""
    found = (
        at_most_one(tx, resource_type, criteria, what="conditional update") if matched is None
        else single_match(matched, resource_type, what="conditional update")
    )
    if found is None:
        if body_id is None:
            return None
        existing = tx.read(resource_type, str(body_id))
        if existing is not None and not existing.deleted:
            raise FhirError(
                Category.CONFLICT,
                f"{resource_type}/{body_id} exists but does not match the criteria",
            )
        return str(body_id)
    if body_id is not None and body_id != found.id:
        raise FhirError(
            Category.INVALID,
            f"the body's id ({body_id}) is not the id of the matching resource ({found.id})",
            expression=f"{resource_type}.id", code="value",
        )
    return found.id


def conditional_update_in(
    tx: Transaction, resource_type: str, criteria: Sequence[tuple[str, str]],
    resource: dict[str, Any], *, if_match: int | None = None,
) -> WriteOutcome:
    require_type(resource, resource_type)
    target = conditional_update_target(tx, resource_type, criteria, resource.get("id"))
    if target is None:
        return tx.create(resource)
    return tx.update({**resource, "id": target}, if_match=if_match)


def update(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    p = req.path_params
    resource = req.resource_body()
    if_match = req.if_match()
    with ctx.repo.transaction() as tx:
        outcome = update_in(tx, p["type"], p["id"], resource, if_match=if_match)
    return write_response(req, outcome, status=201 if outcome.created else 200)


def conditional_update(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    resource = req.resource_body()
    if_match = req.if_match()
    with ctx.repo.transaction() as tx:
        outcome = conditional_update_in(
            tx, req.path_params["type"], req.criteria(), resource, if_match=if_match
        )
    return write_response(req, outcome, status=201 if outcome.created else 200)

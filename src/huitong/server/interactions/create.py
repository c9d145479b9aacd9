"""FHIR create and conditional create — https://hl7.org/fhir/R4/http.html#create,
https://hl7.org/fhir/R4/http.html#ccreate.

201 with ``Location: <base>/Type/id/_history/1`` and ``ETag``. The server assigns the id
(an ``id`` in the body is ignored, as the specification requires). ``If-None-Exist``: no
match creates, one match returns 200 with that resource and writes nothing, several is
PRECONDITION_FAILED (412). INVALID (400) for a body whose type is not the URL's, or that
fails validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huitong.server.interactions.conditional import at_most_one
from huitong.server.request import FhirRequest, ServerContext, require_type
from huitong.server.response import FhirResponse, write_response
from huitong.store.repository import Transaction, WriteOutcome

__all__ = ["create", "create_in"]


def create_in(
    tx: Transaction, resource: dict[str, Any], *,
    if_none_exist: Sequence[tuple[str, str]] | None = None, id: str | None = None,
) -> WriteOutcome:
    """Create inside ``tx``; ``id`` is a server id chosen in advance (transaction Bundles)."""
    if if_none_exist is not None:
        found = at_most_one(
            tx, resource["resourceType"], if_none_exist, what="conditional create"
        )
        if found is not None:
            return WriteOutcome(found, created=False, changed=False)
    return tx.create(resource, id=id)


def create(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    resource = req.resource_body()
    require_type(resource, req.path_params["type"])
    with ctx.repo.transaction() as tx:
        outcome = create_in(tx, resource, if_none_exist=req.if_none_exist())
    return write_response(req, outcome, status=201 if outcome.created else 200)

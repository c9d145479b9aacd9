"""Which institution a resource speaks for: the Organization its own elements name.

Pure FHIR knowledge, shared by the data-quality engine (scores per institution) and the
terminology write path (an institution's own code maps), so both attribute a record alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OWN_ORGANIZATION_ELEMENTS", "organization_reference", "own_organization"]

# Elements naming the organization responsible for a resource, most specific first
# (Patient.managingOrganization, Encounter.serviceProvider, Observation.performer ...).
OWN_ORGANIZATION_ELEMENTS = (
    "managingOrganization", "serviceProvider", "organization", "custodian", "performer",
    "requester", "author", "recorder",
)  # fmt: skip


def organization_reference(value: Any) -> str | None:
    """``Organization/<id>`` from a Reference (relative or absolute), else None."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if not isinstance(ref, str) and isinstance(value.get("actor"), dict):
            ref = value["actor"].get("reference")  # Immunization.performer.actor
        if isinstance(ref, str):
            head, sep, rid = ref.rpartition("Organization/")
            if sep and rid and "/" not in rid and (not head or head.endswith("/")):
                return f"Organization/{rid}"
    return None


def own_organization(resource: Mapping[str, Any]) -> str | None:
    """The first Organization the resource's own elements name, or None."""
    for key in OWN_ORGANIZATION_ELEMENTS:
        value = resource.get(key)
        if value is None:
            continue  # most of these elements are absent: no list, no call
        for item in value if isinstance(value, list) else [value]:
            org = organization_reference(item)
            if org is not None:
                return org
    return None

"""Which institution a resource being written comes from, and which ConceptMaps apply to it.

The institution is found the way the data-quality service finds it (the resource's own
organization element, else its encounter's service provider, else its subject Patient's
managing organization), because every intake path — HL7 v2, files, devices, plain FHIR —
already stamps the channel's Organization there. The terminology layer may not import the
quality layer, so the few lines are repeated here; Patients and Encounters written earlier
in the same transaction are remembered by the write hook, so a transaction bundle never
reads (and so never flushes) its own rows.

A ConceptMap is used on ingest only when it says so, in ``useContext``: the context type
:data:`INGEST_CONTEXT` with ``valueReference`` ``Organization/<id>`` (that institution's
local codes) or ``valueCodeableConcept`` :data:`REGION_VALUE` (every institution). Other
ConceptMaps (ICD-9 → ICD-10 and the like) serve ``$translate`` and never change data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from huitong.fhir.organizations import organization_reference, own_organization
from huitong.store.repository import Transaction

__all__ = [
    "INGEST_CONTEXT",
    "REGION",
    "REGION_VALUE",
    "UNKNOWN_INSTITUTION",
    "ingest_scopes",
    "ingest_use_context",
    "organization_reference",
    "own_organization",
    "resolve_institution",
]

USAGE_CONTEXT_SYSTEM = "urn:huitong:usage-context"
INGEST_CONTEXT = (USAGE_CONTEXT_SYSTEM, "ingest-translation")
REGION_VALUE = (USAGE_CONTEXT_SYSTEM, "region")
REGION = "region"  # the scope of region-wide maps
UNKNOWN_INSTITUTION = "unknown"  # queue rows of records that name no institution


def _local_id(value: Any, rtype: str) -> str | None:
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str):
        return None
    head, sep, rid = ref.rpartition(f"{rtype}/")
    return rid if sep and rid and "/" not in rid and (not head or head.endswith("/")) else None


def resolve_institution(
    tx: Transaction, resource: Mapping[str, Any], known: dict[str, str | None]
) -> str | None:
    """The institution of ``resource`` (``Organization/<id>``) or None. ``known`` memoises
    ``Patient/<id>`` and ``Encounter/<id>`` → their organization for this transaction."""
    own = own_organization(resource)
    if own is not None:
        return own
    for key, rtype in (
        ("encounter", "Encounter"),
        ("context", "Encounter"),
        ("subject", "Patient"),
        ("patient", "Patient"),
    ):
        rid = _local_id(resource.get(key), rtype)
        if rid is None:
            continue
        ref = f"{rtype}/{rid}"
        if ref not in known:
            stored = tx.read(rtype, rid)
            known[ref] = (
                None if stored is None or stored.deleted else own_organization(stored.resource)
            )
        if known[ref] is not None:
            return known[ref]
    return None


def ingest_use_context(scope: str) -> dict[str, Any]:
    """The ``useContext`` entry that makes a ConceptMap apply on ingest to ``scope``
    (``Organization/<id>`` or :data:`REGION`)."""
    entry: dict[str, Any] = {"code": {"system": INGEST_CONTEXT[0], "code": INGEST_CONTEXT[1]}}
    if scope == REGION:
        entry["valueCodeableConcept"] = {
            "coding": [
                {
                    "system": REGION_VALUE[0],
                    "code": REGION_VALUE[1],
                    "display": "Region-wide / 全区域",
                }
            ]
        }
    else:
        entry["valueReference"] = {"reference": scope}
    return entry


def ingest_scopes(concept_map: Mapping[str, Any]) -> list[str]:
    """The scopes (``Organization/<id>``, :data:`REGION`) a ConceptMap applies to on ingest;
    empty when it is not an ingest map (or is retired)."""
    if concept_map.get("status") == "retired":
        return []
    scopes: list[str] = []
    for ctx in concept_map.get("useContext") or []:
        if not isinstance(ctx, dict):
            continue
        code = ctx.get("code") or {}
        if (code.get("system"), code.get("code")) != INGEST_CONTEXT:
            continue
        org = organization_reference(ctx.get("valueReference"))
        if org is not None:
            scopes.append(org)
            continue
        concept = ctx.get("valueCodeableConcept") or {}
        if any(
            isinstance(c, dict) and (c.get("system"), c.get("code")) == REGION_VALUE
            for c in concept.get("coding") or []
        ):
            scopes.append(REGION)
    return scopes

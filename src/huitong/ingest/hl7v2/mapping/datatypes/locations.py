"""PL → a reference to a ``Location``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-pl-to-location.html).

PL.1 point of care (ward), PL.2 room, PL.3 bed, PL.4 facility (HD), PL.9 description. The
most specific part present is the Location, identified by the whole path under the
channel's namespace and created only if absent.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.message import Value
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["pl_location"]

_PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def pl_location(state: MapState, pl: Value) -> dict[str, Any] | None:
    """A Reference to the Location for ``pl`` (``None`` when the PL names nothing)."""
    facility = pl.part(4)[1] or pl.part(4)[2]
    path = [p for p in (facility, pl[1], pl[2], pl[3]) if p]
    if not path:
        return None
    if pl[3]:
        kind, display = "bd", "Bed"
    elif pl[2]:
        kind, display = "ro", "Room"
    elif pl[1]:
        kind, display = "wa", "Ward"
    else:
        kind, display = "bu", "Building"
    name = " ".join(p for p in (pl[1], pl[2], pl[3]) if p) or facility
    identifier = (state.local_system("location"), "/".join(path))
    location: dict[str, Any] = {
        "resourceType": "Location",
        "identifier": [{"system": identifier[0], "value": identifier[1]}],
        "status": "active",
        "name": name,
        "mode": "instance",
        "physicalType": {"coding": [{"system": _PHYSICAL, "code": kind, "display": display}]},
    }
    if pl[9]:
        location["description"] = pl[9]
    return {"reference": state.builder.ensure(location, identifier), "display": name}

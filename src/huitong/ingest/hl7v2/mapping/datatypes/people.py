"""XCN → a reference to a ``Practitioner``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-xcn-to-practitioner.html).

With an id (XCN.1) the practitioner is its own entry, created only if no practitioner with
that identifier exists (so the message never overwrites the registry). Without one, it is
contained in the resource that mentions it: a name with no identity cannot be shared.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes.identifiers import hd_system
from huitong.ingest.hl7v2.mapping.datatypes.names import xpn_name
from huitong.ingest.hl7v2.mapping.message import Value
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["xcn_reference"]


def _name(xcn: Value) -> dict[str, Any] | None:
    # XCN.2 family, .3 given, .4 further given, .5 suffix, .6 prefix, .7 degree
    return xpn_name(Value(xcn.parts[1:7]))


def xcn_reference(state: MapState, xcn: Value, owner: dict[str, Any]
                  ) -> dict[str, Any] | None:
    """A Reference to the practitioner named by ``xcn``; a contained Practitioner is added
    to ``owner["contained"]`` when there is no id. ``None`` when the XCN is empty."""
    if xcn.empty:
        return None
    name = _name(xcn)
    practitioner: dict[str, Any] = {"resourceType": "Practitioner"}
    if name:
        practitioner["name"] = [name]
    display = (name or {}).get("text") or " ".join(
        [*(name or {}).get("given", []), (name or {}).get("family", "")]
    ).strip()
    if xcn[1]:
        identifier = (hd_system(state, xcn.part(9), "practitioner"), xcn[1])
        practitioner["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
        ref: dict[str, Any] = {"reference": state.builder.ensure(practitioner, identifier)}
    else:
        if not name:
            return None
        contained = owner.setdefault("contained", [])
        pid = f"pract{len(contained) + 1}"
        contained.append({**practitioner, "id": pid})
        ref = {"reference": f"#{pid}"}
    if display:
        ref["display"] = display
    return ref

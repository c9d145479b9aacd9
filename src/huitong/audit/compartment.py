"""Whose record a resource belongs to: the Patient ids of its Patient compartment.

The audit log names the patients every read and write touched, so a patient can later list
who accessed their record. The store computes the same membership while indexing
(``IndexEntries.patients``) but does not return it with a resource, so this module evaluates
only the compartment's membership parameters
(https://hl7.org/fhir/R4/compartmentdefinition-patient.html) on the resource: a few FHIRPath
expressions per type, compiled once, instead of the whole index.

References count as the store counts them: relative ``Patient/<id>`` (optionally with
``/_history/<v>``), or absolute under this server's own base URL; an absolute reference to
another server names somebody else's patient and is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from huitong.fhir.definitions import compartments, resource_types, search_parameters
from huitong.fhir.fhirpath import compile_path

__all__ = ["patients_of"]

_PATIENT_REF = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")

_Evaluate = Callable[[list[Any], Any], list[Any]]


@cache
def _evaluators(resource_type: str) -> tuple[_Evaluate, ...]:
    members = set(compartments().get("Patient", {}).get(resource_type, ()))
    if not members:
        return ()
    found: list[_Evaluate] = []
    for definition in search_parameters():
        if definition["code"] not in members or not definition.get("expression"):
            continue
        bases = definition["base"]
        if resource_type not in bases and "Resource" not in bases:
            continue
        found.append(compile_path(definition["expression"], resource_type).evaluate)
    return tuple(found)


def _patient_id(reference: str, local_base: str | None) -> str | None:
    if "://" in reference:
        if not local_base or not reference.startswith(local_base):
            return None
        reference = reference[len(local_base) :]
    m = _PATIENT_REF.match(reference)
    return m.group(1) if m else None


def patients_of(resource: dict[str, Any], *, local_base: str | None = None) -> list[str]:
    """The Patient ids whose compartment holds ``resource`` (a Patient: its own id first).
    ``local_base`` is this server's FHIR base URL (absolute references under it are local)."""
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or rtype not in resource_types():
        return []
    out: dict[str, None] = {}
    if rtype == "Patient" and isinstance(resource.get("id"), str):
        out[resource["id"]] = None
    evaluators = _evaluators(rtype)
    if evaluators:
        base = local_base.rstrip("/") + "/" if local_base else None
        root = (resource, rtype)
        for evaluate in evaluators:
            for value, _type_name in evaluate([root], root):
                ref = value.get("reference") if isinstance(value, dict) else None
                if isinstance(ref, str):
                    pid = _patient_id(ref, base)
                    if pid:
                        out[pid] = None
    return list(out)

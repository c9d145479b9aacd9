"""One person, one record: searches that name a golden (master) Patient cover the source
records the identity service linked to it.

``Observation?patient=Patient/{golden}``, ``Patient/{golden}/Observation`` and
``Patient/{golden}/$everything`` return the data every institution sent about that person;
a search naming a source record stays with that record. The identity service answers which
sources a golden record has; this module only rewrites the query (pure, given that answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from huitong.fhir.search.model import SearchQuery
from huitong.fhir.search.params import param_for

__all__ = ["expand_compartment", "expand_reference_params"]

SourcesOf = Callable[[str], list[str]]


def _patient_id(value: str) -> str | None:
    """The id in ``Patient/x`` or bare ``x`` (no other type, no URL, no version)."""
    if value.startswith("Patient/"):
        value = value.removeprefix("Patient/")
    if not value or "/" in value or ":" in value or "|" in value:
        return None
    return value


def expand_reference_params(
    resource_type: str | None, params: Sequence[tuple[str, str]], sources_of: SourcesOf
) -> list[tuple[str, str]]:
    """Reference parameters that can point at a Patient (``patient``, ``subject``…) and
    name a golden record also match its linked source records (an OR over the values)."""
    if resource_type is None:
        return list(params)
    out: list[tuple[str, str]] = []
    for name, value in params:
        code, _, modifier = name.partition(":")
        definition = param_for(resource_type, code) if "." not in name else None
        if (
            definition is None
            or definition.type != "reference"
            or (definition.targets and "Patient" not in definition.targets)
            or modifier not in ("", "Patient")
        ):
            out.append((name, value))
            continue
        values: list[str] = []
        for part in value.split(","):
            values.append(part)
            pid = _patient_id(part)
            if pid is not None:
                values += [f"Patient/{s}" for s in sources_of(pid)]
        out.append((name, ",".join(dict.fromkeys(values))))
    return out


def expand_compartment(query: SearchQuery, sources_of: SourcesOf) -> SearchQuery:
    """``Patient/{golden}/…`` searches the compartments of the golden record and its
    sources as one."""
    if query.compartment is None or query.compartment[0] != "Patient":
        return query
    golden = query.compartment[1]
    sources = sources_of(golden) if isinstance(golden, str) else []
    if not sources:
        return query
    return replace(query, compartment=("Patient", (golden, *sources)))  # type: ignore[arg-type]

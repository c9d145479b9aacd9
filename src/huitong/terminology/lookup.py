"""CodeSystem ``$lookup`` — https://hl7.org/fhir/R4/codesystem-operation-lookup.html.

Output, in the order the OperationDefinition lists it: ``name``, ``version``, ``display``
(in ``displayLanguage`` when a designation has it), ``designation`` (language, use, value),
``property`` (code, value). With no ``property`` input every concept property is returned
together with ``parent``, ``child`` and ``inactive``; with some, only those (``designation``
names the designations). Failure contract: NOT_FOUND for a code the system does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from huitong.fhir.errors import Category
from huitong.terminology._messages import error
from huitong.terminology._parameters import ParametersBuilder
from huitong.terminology.index import CodeSystemIndex

__all__ = ["lookup"]


def _ver(index: CodeSystemIndex) -> str:
    return f" (version {index.version})" if index.version else ""


def lookup(
    index: CodeSystemIndex, code: str, *, display_language: str | None = None,
    properties: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``Parameters`` answer for ``code`` in ``index``."""
    concept = index.get(code)
    if concept is None:
        raise error(Category.NOT_FOUND, "unknown-code", issue_code="code-invalid", code=code,
                    url=index.url, ver=_ver(index))
    wanted = set(properties)
    everything = not wanted
    out = ParametersBuilder()
    out.add("name", index.name or index.title or index.url, "string")
    out.add("version", index.version, "string")
    out.add("display", index.display_for(concept, display_language) or concept.code, "string")
    if everything or "designation" in wanted:
        for d in concept.designations:
            parts: list[dict[str, Any]] = []
            if d.language:
                parts.append(ParametersBuilder.part("language", d.language, "code"))
            if d.use:
                parts.append(ParametersBuilder.part("use", d.use, "Coding"))
            parts.append(ParametersBuilder.part("value", d.value, "string"))
            out.add_parts("designation", parts)

    def prop(name: str, value: Any, kind: str) -> None:
        if everything or name in wanted:
            out.add_parts("property", [
                ParametersBuilder.part("code", name, "code"),
                ParametersBuilder.part("value", value, kind),
            ])

    for p in concept.properties:
        prop(p.code, p.value, p.kind)
    for parent in index.parents_of(concept.code):
        prop("parent", parent, "code")
    for child in index.children_of(concept.code):
        prop("child", child, "code")
    if not any(p.code == "inactive" for p in concept.properties):
        prop("inactive", concept.inactive, "boolean")
    return out.build()

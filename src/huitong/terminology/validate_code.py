"""``$validate-code`` for CodeSystems and ValueSets.

- https://hl7.org/fhir/R4/codesystem-operation-validate-code.html
- https://hl7.org/fhir/R4/valueset-operation-validate-code.html

Output: ``result`` (boolean), ``message`` (bilingual, when there is something to say) and
``display`` (the concept's display, in ``displayLanguage`` when available). A wrong
``display`` makes the result false. An abstract (``notSelectable``) concept is valid only with
``abstract=true``; an inactive one is valid with a message saying so. A CodeableConcept is
valid when any of its codings is. Membership is decided without expanding the value set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from huitong.terminology._messages import Message, message
from huitong.terminology._parameters import ParametersBuilder
from huitong.terminology.compose import Resolver, find_in_value_set
from huitong.terminology.index import CodeSystemIndex, Concept

__all__ = [
    "Validation", "combine", "validate_in_system", "validate_in_value_set",
    "validation_parameters",
]


@dataclass(frozen=True, slots=True)
class Validation:
    result: bool
    messages: tuple[Message, ...] = ()
    display: str | None = None


def _ver(index: CodeSystemIndex | None) -> str:
    return f" (version {index.version})" if index is not None and index.version else ""


def _check_concept(
    index: CodeSystemIndex, concept: Concept, *, display: str | None,
    display_language: str | None, abstract_ok: bool, listed_display: str | None = None,
) -> Validation:
    shown = index.display_for(concept, display_language)
    if concept.abstract and not abstract_ok:
        return Validation(False, (message("abstract-code", code=concept.code, url=index.url),),
                          shown)
    notes: list[Message] = []
    ok = True
    if display is not None and not index.has_display(concept, display) and (
        listed_display is None or display.strip() != listed_display.strip()
    ):
        ok = False
        notes.append(message("bad-display", display=display, code=concept.code, url=index.url,
                             valid=shown or concept.display or ""))
    if concept.inactive:
        notes.append(message("inactive-code", code=concept.code, url=index.url))
    return Validation(ok, tuple(notes), shown)


def validate_in_system(
    index: CodeSystemIndex, code: str, *, system: str | None = None,
    display: str | None = None, display_language: str | None = None, abstract_ok: bool = False,
) -> Validation:
    """Is ``code`` (with ``display``) valid in this code system?"""
    if system is not None and system != index.url:
        return Validation(False, (message("system-mismatch", got=system, url=index.url),))
    concept = index.get(code)
    if concept is None:
        return Validation(False, (message("unknown-code", code=code, url=index.url,
                                          ver=_ver(index)),))
    return _check_concept(index, concept, display=display, display_language=display_language,
                          abstract_ok=abstract_ok)


def validate_in_value_set(
    value_set: dict[str, Any], resolver: Resolver, system: str, code: str, *,
    version: str | None = None, display: str | None = None,
    display_language: str | None = None, abstract_ok: bool = False,
    system_versions: dict[str, str] | None = None,
) -> Validation:
    """Is ``(system, code)`` (with ``display``) a valid member of ``value_set``?"""
    versions = dict(system_versions or {})
    if version:
        versions[system] = version
    member = find_in_value_set(value_set, system, code, resolver, system_versions=versions)
    vs_name = value_set.get("url") or value_set.get("name") or value_set.get("id", "")
    if member is None:
        notes = [message("not-in-vs", code=code, system=system, vs=vs_name)]
        index = resolver.find_code_system_index(system, version)
        if index is not None and index.get(code) is None:
            notes.append(message("unknown-code", code=code, url=system, ver=_ver(index)))
        return Validation(False, tuple(notes))
    if member.concept is None or member.index is None:
        ok = display is None or member.display is None or (
            display.strip().casefold() == member.display.strip().casefold()
        )
        notes = () if ok else (message("bad-display", display=display, code=code, url=system,
                                       valid=member.display or ""),)
        return Validation(ok, notes, member.display)
    return _check_concept(member.index, member.concept, display=display,
                          display_language=display_language, abstract_ok=abstract_ok,
                          listed_display=member.display)


def combine(results: Sequence[Validation]) -> Validation:
    """A CodeableConcept: valid when any coding is; the messages of the deciding codings."""
    valid = [r for r in results if r.result]
    if valid:
        return Validation(True, tuple(m for r in valid for m in r.messages), valid[0].display)
    display = next((r.display for r in results if r.display), None)
    return Validation(False, tuple(m for r in results for m in r.messages), display)


def validation_parameters(validation: Validation) -> dict[str, Any]:
    out = ParametersBuilder().add("result", validation.result, "boolean")
    if validation.messages:
        out.add("message", "; ".join(m.text for m in validation.messages), "string")
    out.add("display", validation.display, "string")
    return out.build()

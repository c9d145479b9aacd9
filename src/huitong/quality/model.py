"""What a data-quality rule is, and what checking a resource against rules produces.

The vocabulary follows the harmonized data-quality framework of Kahn et al., "A Harmonized
Data Quality Assessment Terminology and Framework" (eGEMs 2016,
https://doi.org/10.13063/2327-9214.1244): *conformance*, *completeness* and *plausibility*,
to which Huitong adds *consistency* (two facts about one person that cannot both be true)
and *timeliness* (data that arrives long after it was observed).

A rule is data: an id, a category, a default severity, the resource types it reads, a message
in English and Chinese, default parameters an operator may tune, and a check — either a
FHIRPath-style expression (:class:`ExpressionCheck`) or the name of a Python predicate
registered with :func:`huitong.quality.predicates.predicate` (:class:`PredicateCheck`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from string import Formatter
from types import MappingProxyType
from typing import Any

__all__ = [
    "Assessment",
    "Category",
    "ExpressionCheck",
    "Finding",
    "Outcome",
    "ParamValue",
    "PredicateCheck",
    "Rule",
    "Severity",
    "format_message",
    "message_formatter",
]

# A tunable parameter: a number, a string, a flag, or a list of strings (code lists).
ParamValue = int | float | str | bool | tuple[str, ...]


class Category(Enum):
    CONFORMANCE = "conformance"  # values agree with the format and the terminology
    COMPLETENESS = "completeness"  # what must be there is there
    PLAUSIBILITY = "plausibility"  # values are believable on their own
    CONSISTENCY = "consistency"  # values agree with other facts about the same person
    TIMELINESS = "timeliness"  # data arrives soon enough after it happened


class Severity(Enum):
    REJECT = "reject"  # the write fails and the sender is told why
    WARN = "warn"  # the write goes through; the finding is recorded


@dataclass(frozen=True, slots=True)
class ExpressionCheck:
    """A declarative check (see :mod:`huitong.quality.expression` for the language).

    ``expect`` must be true for the resource to pass; false is a failure and an empty result
    means the rule does not apply to this resource (nothing to check). ``when``, if given,
    must be true for the rule to apply at all. ``%name`` stands for the rule parameter
    ``name``. ``expression`` is the FHIRPath location reported with a failure (defaults to
    the type's root).
    """

    expect: str
    when: str | None = None
    expression: str | None = None


@dataclass(frozen=True, slots=True)
class PredicateCheck:
    """A check written in Python and registered by ``name``; see
    :func:`huitong.quality.predicates.predicate` for the contract. ``when``, if given, is a
    check expression that must be true for the rule to apply."""

    name: str
    when: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One data-quality rule.

    ``message_en`` / ``message_zh`` are ``str.format`` templates over the rule parameters and
    the values a failing check reports (``{value}``, ``{unit}``…); a placeholder with no value
    is left as written. ``params`` are the defaults; a region's configuration overrides them
    (same names, same types).
    """

    id: str
    category: Category
    severity: Severity
    resource_types: tuple[str, ...]
    message_en: str
    message_zh: str
    check: ExpressionCheck | PredicateCheck
    params: Mapping[str, ParamValue] = field(default_factory=lambda: MappingProxyType({}))
    enabled: bool = True  # off-by-default rules are shipped for regions that opt in

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def to_json(self) -> dict[str, Any]:
        """The rule as the operator API lists it (parameters as configured)."""
        check: dict[str, Any]
        if isinstance(self.check, ExpressionCheck):
            check = {"expression": self.check.expect, "when": self.check.when}
        else:
            check = {"predicate": self.check.name, "when": self.check.when}
        return {
            "id": self.id,
            "category": self.category.value,
            "severity": self.severity.value,
            "enabled": self.enabled,
            "resourceTypes": list(self.resource_types),
            "message": {"en": self.message_en, "zh": self.message_zh},
            "check": check,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one check says about one resource.

    ``passed`` False is a failure. ``expression`` points at the offending element (FHIRPath);
    ``values`` fill the rule's message placeholders.
    """

    passed: bool
    expression: str | None = None
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Finding:
    """A failed check: what is wrong with which resource, in both languages."""

    rule_id: str
    category: Category
    severity: Severity
    expression: str | None
    message_en: str
    message_zh: str
    resource_ref: str  # "Observation/123", or just the type before an id is assigned

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "category": self.category.value,
            "severity": self.severity.value,
            "expression": self.expression,
            "message": {"en": self.message_en, "zh": self.message_zh},
            "resource": self.resource_ref,
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """Every rule that applied to one resource, and the ones it failed.

    ``applicable`` lists the ids of rules whose check applied (passed or failed), so a pass
    rate can be computed as ``1 - failed / applicable``; ``findings`` holds the failures.
    """

    resource_ref: str
    applicable: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def rejections(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.REJECT)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARN)

    @property
    def rejected(self) -> bool:
        return any(f.severity is Severity.REJECT for f in self.findings)


class _Blanks(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def format_message(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{name}`` placeholders from ``values``; unknown names stay as written, and a
    malformed template comes back unchanged rather than failing a write."""
    if "{" not in template:
        return template
    shown = _Blanks({k: _show(v) for k, v in values.items()})
    try:
        return template.format_map(shown)
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


def message_formatter(template: str) -> Callable[[Mapping[str, Any]], str]:
    """:func:`format_message` for one template, parsed once: a rule's message is filled on
    every finding (about one per historical result), and the general form builds a
    dictionary and parses the template each time. Templates whose placeholders are all plain
    names (every shipped one) are joined from their pieces; any other form (attribute,
    index, format spec, conversion, a malformed template) takes format_message itself."""
    if "{" not in template and "}" not in template:
        return lambda values: template
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return lambda values: template  # malformed: format_message returns it unchanged
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (not name.isidentifier() or spec or conversion):
            return lambda values: format_message(template, values)
        pieces.append((literal, name))

    def fill(values: Mapping[str, Any]) -> str:
        out: list[str] = []
        try:
            for literal, name in pieces:
                out.append(literal)
                if name is not None:
                    # format(x, "") is what str.format_map writes for a plain "{name}".
                    out.append(format(_show(values[name]), "") if name in values
                               else "{" + name + "}")  # fmt: skip
        except (ValueError, IndexError, AttributeError, KeyError):
            return template
        return "".join(out)

    return fill


_FORMATTER = Formatter()


def _show(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value

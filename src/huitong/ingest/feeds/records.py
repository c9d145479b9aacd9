"""One record (a CSV row or a JSON object) through a :class:`FeedMapping` into resources.

Pure: the caller supplies ``get(source) -> value or None`` and receives the resources to add
to the batch's transaction plus the record's problems. A record with any error yields no
resources at all, so a half-understood row never reaches the record; its problems say which
column and rule failed. Every resource built is checked with
:func:`huitong.fhir.validation.validate_resource` before it is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from huitong.fhir.errors import FhirError
from huitong.fhir.validation import validate_resource
from huitong.ingest.feeds.elements import set_value
from huitong.ingest.feeds.mapping import FeedMapping, FieldSpec, ResourceSpec, Template
from huitong.ingest.feeds.problems import Problem, Reason
from huitong.ingest.feeds.transaction import Mode, conditional_reference, full_url
from huitong.ingest.feeds.transforms import (
    DEFAULT_DATE_FORMATS,
    DEFAULT_DATETIME_FORMATS,
    TransformError,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_integer,
    quantity,
)

__all__ = ["Built", "Getter", "ResourcePlan", "map_record", "plan_mapping", "validation_problems"]

Getter = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class Built:
    """A resource ready for :meth:`Transaction.add`."""

    resource: dict[str, Any]
    system: str
    value: str
    mode: Mode


class _Bad(Exception):
    def __init__(self, reason: Reason, en: str, zh: str, field: str | None) -> None:
        super().__init__(en)
        self.problem = Problem(reason, en, zh, field=field)


def _missing(field: str | None, what: str = "value") -> _Bad:
    return _Bad(Reason.MISSING_VALUE, f"required {what} is empty", "必填值为空", field)


def _render(template: Template, get: Getter) -> str | None:
    out = []
    for literal, source in template.parts:
        out.append(literal)
        if source is not None:
            value = get(source)
            if value is None:
                return None
            out.append(value if isinstance(value, str) else str(value))
    return "".join(out)


def _convert(f: FieldSpec, raw: Any, mapping: FeedMapping, get: Getter) -> Any:
    kind = f.kind
    if kind == "mapped":
        key = raw if isinstance(raw, str) else str(raw)
        assert f.map is not None
        found = f.map.get(key.strip(), f.default)
        if found is None:
            raise _Bad(Reason.UNMAPPED_CODE, "value is not in the mapping's translation table",
                       "取值不在映射的代码对照表中", f.source)
        # a table value (a Coding) is copied: other fields may add to it in this resource
        return orjson.loads(orjson.dumps(found)) if isinstance(found, dict | list) else found
    if kind == "string":
        if isinstance(raw, bool):  # JSON true/false, written as FHIR writes them
            return "true" if raw else "false"
        return raw.strip() if isinstance(raw, str) else str(raw)
    if kind == "integer":
        return parse_integer(raw)
    if kind == "decimal":
        return parse_decimal(raw)
    if kind == "boolean":
        return parse_boolean(raw)
    if kind == "date":
        return parse_date(raw, f.formats or DEFAULT_DATE_FORMATS)
    if kind == "dateTime":
        return parse_datetime(raw, mapping.timezone, f.formats or DEFAULT_DATETIME_FORMATS)
    if kind == "quantity":
        value = parse_decimal(raw)
        if f.unit is not None:
            return quantity(value, f.unit)
        unit = get(str(f.unit_source))
        if unit is None:
            raise _Bad(Reason.BAD_UNIT, "the unit column is empty", "单位列为空", f.unit_source)
        unit = unit.strip() if isinstance(unit, str) else str(unit)
        if f.unit_map is not None:
            code = f.unit_map.get(unit)
            if code is None:
                raise _Bad(Reason.BAD_UNIT, "unit is not in the mapping's unit table",
                           "单位不在映射的单位对照表中", f.unit_source)
            return quantity(value, unit, code)
        return quantity(value, unit)
    raise AssertionError(kind)  # pragma: no cover - parse_mapping admits no other kind


def _field_value(f: FieldSpec, mapping: FeedMapping, get: Getter,
                 urls: dict[str, str | None]) -> Any:
    if f.kind == "template":
        assert f.template is not None
        return _render(f.template, get)
    if f.kind == "reference":
        if f.target == "organization":
            return {"reference": mapping.organization}
        if f.target is not None:
            url = urls.get(f.target)
            return None if url is None else {"reference": url}
        assert f.target_value is not None
        value = _render(f.target_value, get)
        if value is None:
            return None
        return {"reference": conditional_reference(str(f.target_type), str(f.target_system),
                                                   value.strip())}
    raw = get(str(f.source))
    if raw is None:
        return None
    try:
        return _convert(f, raw, mapping, get)
    except TransformError as exc:
        raise _Bad(exc.reason, exc.en, exc.zh, f.source) from None


def _identity(spec: ResourceSpec, get: Getter) -> str | None:
    value = _render(spec.value, get)
    return value.strip() or None if value is not None else None


@dataclass(frozen=True, slots=True)
class ResourcePlan:
    """A resource spec prepared once per feed: ``skeleton`` is the resource with every
    constant field already set (JSON, copied per record — cheaper than setting the
    constants again), ``variable`` the fields that depend on the record."""

    spec: ResourceSpec
    skeleton: bytes
    variable: tuple[FieldSpec, ...]


def plan_mapping(mapping: FeedMapping) -> tuple[ResourcePlan, ...]:
    """Prepare ``mapping`` for :func:`map_record`. Constant fields (``value``, references to
    the organization) are set before the record's fields, so a record field inside a constant
    (``code.text`` under a constant ``code``) adds to it."""
    plans = []
    for spec in mapping.resources:
        resource: dict[str, Any] = {
            "resourceType": spec.type, "identifier": [{"system": spec.system, "value": ""}],
        }
        variable = []
        for f in spec.fields:
            if f.kind == "constant":
                set_value(resource, f.element, orjson.loads(orjson.dumps(f.value)))
            elif f.kind == "reference" and f.target == "organization":
                set_value(resource, f.element, {"reference": mapping.organization})
            else:
                variable.append(f)
        plans.append(ResourcePlan(spec, orjson.dumps(resource), tuple(variable)))
    return tuple(plans)


def _item_getter(get: Getter, base: str, number: int) -> Getter:
    """Sources ``item…`` of a ``for_each`` resource read the array item ``base`` (``tests[2]``);
    ``item#`` is the item's 1-based number; other sources read the record."""
    def item_get(source: str) -> Any:
        if source == "item#":
            return str(number)
        if source == "item" or source.startswith(("item.", "item[")):
            return get(base + source[4:])
        return get(source)

    return item_get


def _instances(plans: tuple[ResourcePlan, ...], get: Getter, problems: list[Problem]
               ) -> list[tuple[ResourcePlan, Getter, str | None]]:
    """Each resource to build: its plan, the getter it reads with, and for ``for_each``
    items the path that replaces ``item`` in reported field names."""
    out: list[tuple[ResourcePlan, Getter, str | None]] = []
    for plan in plans:
        each = plan.spec.for_each
        if each is None:
            out.append((plan, get, None))
            continue
        items = get(each)
        if items is None:
            continue
        if not isinstance(items, list):
            problems.append(Problem(Reason.BAD_RECORD, "for_each needs an array here",
                                    "for_each 所指位置应为数组", field=each))
            continue
        for i in range(len(items)):
            base = f"{each}[{i}]"
            out.append((plan, _item_getter(get, base, i + 1), base))
    return out


def _rebased(problem: Problem, base: str | None) -> Problem:
    field = problem.field
    if base is None or field is None or not (
            field == "item" or field.startswith(("item.", "item["))):
        return problem
    return replace(problem, field=base + field[4:])


def map_record(mapping: FeedMapping, get: Getter,
               plans: tuple[ResourcePlan, ...] | None = None, *, validate: bool = True,
               ) -> tuple[list[Built], list[Problem]]:
    """Build the resources of one record; on any error return no resources and the problems
    (each with ``field`` set; the caller adds where the record is). ``plans`` is
    :func:`plan_mapping` of ``mapping``, computed here when not given. ``validate=False``
    skips the FHIR validation of the built resources (see :func:`convert_csv`)."""
    problems: list[Problem] = []
    urls: dict[str, str | None] = {}
    identities: list[tuple[ResourcePlan, str, Getter, str | None]] = []
    for plan, item_get, base in _instances(plans or plan_mapping(mapping), get, problems):
        spec = plan.spec
        if spec.only_if is not None and item_get(spec.only_if) is None:
            urls.setdefault(spec.key, None)
            continue
        value = _identity(spec, item_get)
        if value is None:
            field = next((src for src in spec.value.sources if item_get(src) is None), None)
            problems.append(_rebased(Problem(
                Reason.MISSING_VALUE, f"the identity of {spec.type} ({spec.key}) is empty",
                f"{spec.type}（{spec.key}）的标识值为空", field=field), base))
            urls.setdefault(spec.key, None)
            continue
        if spec.for_each is None:
            urls[spec.key] = full_url(spec.type, spec.system, value)
        identities.append((plan, value, item_get, base))
    built: list[Built] = []
    for plan, value, item_get, base in identities:
        resource: dict[str, Any] = orjson.loads(plan.skeleton)
        resource["identifier"][0]["value"] = value
        for f in plan.variable:
            try:
                v = _field_value(f, mapping, item_get, urls)
                if v is None or v == "":
                    if f.required:
                        raise _missing(f.source or f.element.text)
                    continue
                set_value(resource, f.element, v)
            except _Bad as bad:
                problems.append(_rebased(bad.problem, base))
        built.append(Built(resource, plan.spec.system, value, plan.spec.mode))
    if problems:
        return [], problems
    if not validate:
        return built, []
    problems = validation_problems(built)
    return ([], problems) if problems else (built, [])


def validation_problems(built: list[Built]) -> list[Problem]:
    """The FHIR validation problems of one record's resources (at most five per resource,
    ``field`` the element's FHIRPath), as :func:`map_record` reports them; empty when every
    resource is valid. A record converted with ``validate=False`` is checked with this when
    its write is refused, so its report is the one a validating conversion gives."""
    problems: list[Problem] = []
    for b in built:
        try:
            validate_resource(b.resource)
        except FhirError as err:
            for issue in err.issues[:5]:
                problems.append(Problem(
                    Reason.INVALID_RESOURCE, f"{b.resource['resourceType']}: {issue.message}",
                    f"生成的 {b.resource['resourceType']} 不符合 FHIR 规范：{issue.message}",
                    field=issue.expression))
    return problems

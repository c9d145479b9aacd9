"""Typed access to operation input — https://hl7.org/fhir/R4/operations.html#request.

Accepts what the server hands over (``(name, value)`` pairs: query values as strings, body
values as the ``value[x]`` or ``resource`` of each ``Parameters.parameter``) or a
``Parameters`` resource. Failure contract: INVALID with a bilingual message naming the
parameter when a value has the wrong type or a single-valued parameter repeats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from huitong.fhir.errors import Category
from huitong.terminology._messages import error

__all__ = ["Inputs"]

_PRIMITIVE_KEYS = (
    "valueString", "valueCode", "valueUri", "valueUrl", "valueCanonical", "valueBoolean",
    "valueInteger", "valueDateTime", "valueDate", "valueDecimal", "valueId",
    "valueUnsignedInt", "valuePositiveInt",
)


def _param_value(param: Mapping[str, Any]) -> Any:
    if "resource" in param:
        return param["resource"]
    for key, value in param.items():
        if key.startswith("value"):
            return value
    if "part" in param:  # a tuple parameter (e.g. $translate dependency) keeps its parts
        return {str(p.get("name")): _param_value(p) for p in param["part"]}
    return None


class Inputs:
    """Operation parameters by name. Getters coerce query-string text to the declared type."""

    def __init__(self, pairs: Iterable[tuple[str, Any]]) -> None:
        self._pairs = [(str(n), v) for n, v in pairs]

    @classmethod
    def of(cls, source: Inputs | Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Inputs:
        """From pairs, a ``Parameters`` resource, a plain ``{name: value}`` mapping or None."""
        if source is None:
            return cls([])
        if isinstance(source, Inputs):
            return source
        if isinstance(source, Mapping):
            if source.get("resourceType") == "Parameters":
                params = source.get("parameter") or []
                return cls((p.get("name", ""), _param_value(p)) for p in params)
            pairs: list[tuple[str, Any]] = []
            for name, value in source.items():
                values = value if isinstance(value, list) else [value]
                pairs += [(name, v) for v in values]
            return cls(pairs)
        return cls(source)

    def names(self) -> set[str]:
        return {n for n, _ in self._pairs}

    def all(self, name: str) -> list[Any]:
        return [v for n, v in self._pairs if n == name and v is not None]

    def _one(self, name: str) -> Any:
        values = self.all(name)
        if len(values) > 1:
            raise error(Category.INVALID, "repeated-param", name=name)
        return values[0] if values else None

    def str_(self, name: str, *, required: bool = False) -> str | None:
        value = self._one(name)
        if value is None:
            if required:
                raise error(Category.INVALID, "missing-param", name=name)
            return None
        if not isinstance(value, str) or not value:
            raise error(Category.INVALID, "bad-param", name=name, kind="a string", value=value)
        return value

    def bool_(self, name: str, default: bool = False) -> bool:
        value = self._one(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        raise error(Category.INVALID, "bad-param", name=name, kind="a boolean", value=value)

    def int_(self, name: str) -> int | None:
        value = self._one(name)
        if value is None:
            return None
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise error(Category.INVALID, "bad-param", name=name,
                        kind="a non-negative integer", value=value)
        return value

    def coding(self, name: str) -> dict[str, Any] | None:
        value = self._one(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise error(Category.INVALID, "bad-param", name=name, kind="a Coding", value=value)
        return value

    def codeable_concept(self, name: str) -> dict[str, Any] | None:
        value = self._one(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("coding", []), list):
            raise error(Category.INVALID, "bad-param", name=name,
                        kind="a CodeableConcept", value=value)
        return value

    def resource(self, name: str, resource_type: str) -> dict[str, Any] | None:
        value = self._one(name)
        if value is None:
            return None
        if not isinstance(value, dict) or value.get("resourceType") != resource_type:
            raise error(Category.INVALID, "bad-param", name=name, kind="a resource",
                        value=(value or {}).get("resourceType") if isinstance(value, dict)
                        else value)
        return value

    def strings(self, name: str) -> list[str]:
        """Every value of a repeating string parameter; query values may be comma-joined."""
        out: list[str] = []
        for value in self.all(name):
            if not isinstance(value, str):
                raise error(Category.INVALID, "bad-param", name=name, kind="a string",
                            value=value)
            out += [v for v in value.split(",") if v] if "," in value else [value]
        return out

    def parts(self, name: str) -> list[dict[str, Any]]:
        return [v for v in self.all(name) if isinstance(v, dict)]

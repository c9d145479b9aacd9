"""Building ``Parameters`` output — https://hl7.org/fhir/R4/parameters.html."""

from __future__ import annotations

from typing import Any

__all__ = ["ParametersBuilder", "typed_value"]


def typed_value(value: Any, kind: str | None = None) -> tuple[str, Any]:
    """``(value[x] key, value)`` for a Python value; ``kind`` forces a FHIR type name."""
    if kind:
        return f"value{kind[0].upper()}{kind[1:]}", value
    if isinstance(value, bool):
        return "valueBoolean", value
    if isinstance(value, int):
        return "valueInteger", value
    if isinstance(value, float):
        return "valueDecimal", value
    if isinstance(value, dict):
        return "valueCoding", value
    return "valueString", value


class ParametersBuilder:
    """Append parameters in the order the OperationDefinition lists them."""

    def __init__(self) -> None:
        self._params: list[dict[str, Any]] = []

    def add(self, name: str, value: Any, kind: str | None = None) -> ParametersBuilder:
        if value is None:
            return self
        key, v = typed_value(value, kind)
        self._params.append({"name": name, key: v})
        return self

    def add_parts(self, name: str, parts: list[dict[str, Any]]) -> ParametersBuilder:
        self._params.append({"name": name, "part": parts})
        return self

    @staticmethod
    def part(name: str, value: Any, kind: str | None = None) -> dict[str, Any]:
        key, v = typed_value(value, kind)
        return {"name": name, key: v}

    def build(self) -> dict[str, Any]:
        return {"resourceType": "Parameters", "parameter": self._params}

"""FHIR element paths in a mapping (``code.coding[0].system``, ``valueQuantity``,
``component[1].valueQuantity.value``): parsing, checking against the R4 definitions, and
setting a value inside a resource being built.

A path is relative to the resource. Each step is an element name with an optional ``[n]``
index; a repeating element (max ``*``) without an index means its first item. Choice elements
are named by their JSON property (``effectiveDateTime``, ``valueQuantity`` —
https://hl7.org/fhir/R4/formats.html#choice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from huitong.fhir.definitions import structures

__all__ = ["ElementPath", "PathError", "resolve_path", "set_value"]

_STEP = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(?:\[(\d+)\])?")
_CONTAINERS = frozenset({"BackboneElement", "Element"})


class PathError(ValueError):
    """A path that is malformed or names no element of the resource type."""


@dataclass(frozen=True, slots=True)
class ElementPath:
    """A checked path: ``steps`` are (name, index or None when the element does not repeat);
    ``leaf_type`` is the FHIR type of the last element (``string``, ``Quantity``,
    ``Reference``...)."""

    text: str
    steps: tuple[tuple[str, int | None], ...]
    leaf_type: str


def _element(structure: str, path: str) -> list[Any] | None:
    found = structures().get(structure, {}).get("elements", {}).get(path)
    return found  # type: ignore[no-any-return]


def _choice(structure: str, prefix: str, name: str) -> tuple[list[Any], str] | None:
    # valueQuantity -> value[x] with type Quantity; effectiveDateTime -> dateTime
    for i in range(1, len(name)):
        if not name[i].isupper():
            continue
        element = _element(structure, f"{prefix}.{name[:i]}[x]")
        if element is None:
            continue
        wanted = name[i:]
        for code in element[2]:
            if code[:1].upper() + code[1:] == wanted:
                return element, code
    return None


def resolve_path(resource_type: str, text: str) -> ElementPath:
    """Parse ``text`` and check each step against ``resource_type``'s definition.

    Raises :class:`PathError` naming the first step that is not an element.
    """
    if not text or text.startswith(".") or text.endswith("."):
        raise PathError(f"malformed element path {text!r}")
    structure, prefix = resource_type, resource_type
    steps: list[tuple[str, int | None]] = []
    leaf = ""
    parts = text.split(".")
    for n, part in enumerate(parts):
        m = _STEP.fullmatch(part)
        if m is None:
            raise PathError(f"malformed step {part!r} in {text!r}")
        name, index = m.group(1), m.group(2)
        element = _element(structure, f"{prefix}.{name}")
        type_code: str | None = None
        if element is None:
            choice = _choice(structure, prefix, name)
            if choice is None:
                raise PathError(f"{prefix}.{name} is not an element of {resource_type}")
            element, type_code = choice
        repeats = element[1] != "1"
        if index is not None and not repeats:
            raise PathError(f"{prefix}.{name} does not repeat; remove [{index}]")
        steps.append((name, (int(index) if index is not None else 0) if repeats else None))
        if element[3]:  # contentReference: the structure of another element
            structure, prefix = element[3].split(".", 1)[0], element[3]
            leaf = "BackboneElement"
            continue
        if type_code is None:
            if len(element[2]) != 1:
                raise PathError(f"{prefix}.{name} has no single type")
            type_code = element[2][0]
        leaf = type_code
        if type_code in _CONTAINERS:
            prefix = f"{prefix}.{name}"
        elif structures().get(type_code, {}).get("kind") == "complex-type":
            structure, prefix = type_code, type_code
        elif n != len(parts) - 1:
            raise PathError(f"{prefix}.{name} is a {type_code}, it has no {parts[n + 1]!r}")
    return ElementPath(text, tuple(steps), leaf)


def set_value(resource: dict[str, Any], path: ElementPath, value: Any) -> None:
    """Set ``value`` at ``path`` in ``resource``, creating objects and arrays on the way.

    Indexes past the end of an array are filled in order (``coding[1]`` after ``coding[0]``);
    a gap left unfilled (an empty object, or ``null`` at the last step) makes the resource
    fail validation, which reports it.
    """
    steps = path.steps
    if len(steps) == 1 and steps[0][1] is None:  # the common case: birthDate, valueQuantity
        resource[steps[0][0]] = value
        return
    node: Any = resource
    last = len(steps) - 1
    for i, (name, index) in enumerate(steps):
        if index is None:
            if i == last:
                node[name] = value
                return
            node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        while len(items) <= index:
            items.append({} if i != last else None)
        if i == last:
            items[index] = value
            return
        if not isinstance(items[index], dict):
            items[index] = {}
        node = items[index]

"""Reading Parameters answers in the terminology tests."""

from __future__ import annotations

from typing import Any


def param(parameters: dict[str, Any], name: str) -> Any:
    """The value of the first parameter ``name`` (``value[x]`` or parts as a dict)."""
    for p in parameters["parameter"]:
        if p["name"] == name:
            if "part" in p:
                return {q["name"]: next(v for k, v in q.items() if k != "name")
                        for q in p["part"]}
            return next(v for k, v in p.items() if k != "name")
    return None


def params(parameters: dict[str, Any], name: str) -> list[Any]:
    out = []
    for p in parameters["parameter"]:
        if p["name"] == name:
            out.append({q["name"]: next(v for k, v in q.items() if k != "name")
                        for q in p.get("part", [])} if "part" in p
                       else next(v for k, v in p.items() if k != "name"))
    return out

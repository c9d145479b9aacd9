"""Helpers for the terminology-over-HTTP tests: a synchronous ASGI client, fixture
terminology resources and readers for ``Parameters`` answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson

from huitong.terminology.loaders import ICD10_CN_URL

DATA = Path(__file__).parent.parent / "terminology" / "data"
NOW = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
LOCAL_LAB = "http://hospital-a.example/codes/lab"
DEMO = "http://example.org/cs/demo"


class Client:
    """Synchronous requests against the ASGI app (no network)."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://hie.test")

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(url, **kw))

    def post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        return self._loop.run_until_complete(self._client.post(
            url, content=orjson.dumps(body), headers={"content-type": "application/fhir+json"}))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def parameters(**values: Any) -> dict[str, Any]:
    """A Parameters body: strings as valueString/valueCode, booleans, ints, Codings (dicts
    with ``code``), resources (dicts with ``resourceType``)."""
    out = []
    for name, value in values.items():
        if isinstance(value, dict) and "resourceType" in value:
            out.append({"name": name, "resource": value})
        elif isinstance(value, dict) and "coding" in value:
            out.append({"name": name, "valueCodeableConcept": value})
        elif isinstance(value, dict):
            out.append({"name": name, "valueCoding": value})
        elif isinstance(value, bool):
            out.append({"name": name, "valueBoolean": value})
        elif isinstance(value, int):
            out.append({"name": name, "valueInteger": value})
        else:
            out.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": out}


def param(answer: dict[str, Any], name: str) -> Any:
    """The value of the first parameter ``name`` (parts as a dict), or None."""
    assert answer["resourceType"] == "Parameters", answer
    for p in answer["parameter"]:
        if p["name"] == name:
            if "part" in p:
                return {q["name"]: next(v for k, v in q.items() if k != "name")
                        for q in p["part"]}
            return next(v for k, v in p.items() if k != "name")
    return None


def params(answer: dict[str, Any], name: str) -> list[Any]:
    return [
        {q["name"]: next(v for k, v in q.items() if k != "name") for q in p.get("part", [])}
        if "part" in p else next(v for k, v in p.items() if k != "name")
        for p in answer["parameter"] if p["name"] == name
    ]


def demo_code_system(version: str = "1") -> dict[str, Any]:
    """A small is-a hierarchy with Chinese designations."""
    zh = lambda v: [{"language": "zh-CN", "value": v}]  # noqa: E731
    return {
        "resourceType": "CodeSystem", "url": DEMO, "version": version, "name": "Demo",
        "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
        "concept": [
            {"code": "CVD", "display": "Cardiovascular disease", "designation": zh("心血管疾病"),
             "concept": [
                 {"code": "HTN", "display": "Hypertension", "designation": zh("高血压"),
                  "concept": [{"code": "HTN1", "display": "Hypertension grade 1",
                               "designation": zh("高血压1级")}]},
                 {"code": "MI", "display": "Myocardial infarction",
                  "designation": zh("心肌梗死")}]},
            {"code": "DM", "display": "Diabetes mellitus", "designation": zh("糖尿病")},
        ],
    }


def value_sets() -> list[dict[str, Any]]:
    return [
        {"resourceType": "ValueSet", "url": "http://example.org/vs/cvd", "status": "active",
         "compose": {"include": [{"system": DEMO, "filter": [
             {"property": "concept", "op": "is-a", "value": "CVD"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/icd-cn", "status": "active",
         "compose": {"include": [{"system": ICD10_CN_URL}]}},
    ]


def concept_map() -> dict[str, Any]:
    return {
        "resourceType": "ConceptMap", "url": "http://example.org/cm/lab-to-loinc",
        "status": "active", "sourceUri": "http://example.org/vs/local-lab",
        "targetUri": "http://loinc.org/vs",
        "group": [{"source": LOCAL_LAB, "target": "http://loinc.org", "element": [
            {"code": "LAB-GLU", "display": "血糖", "target": [
                {"code": "2345-7", "equivalence": "equivalent"}]},
            {"code": "LAB-CR", "target": [{"code": "2160-0", "equivalence": "wider"}]},
        ]}],
    }

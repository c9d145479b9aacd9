"""Data for the terminology tests (imported by conftest.py and the test modules): a demo
code system, value sets, concept maps and the fixture files' folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huitong.terminology.loaders import (
    ICD10_CN_URL,
)

DATA = Path(__file__).parent / "data"
LOCAL_LAB = "http://hospital-a.example/codes/lab"
LOCAL_DX = "http://hospital-a.example/codes/dx"
FIXED_MICROS = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def demo_code_system(version: str = "1") -> dict[str, Any]:
    """A small polyhierarchy (nesting and parent properties), with zh designations."""
    zh = lambda v: [{"language": "zh-CN", "value": v}]  # noqa: E731
    return {
        "resourceType": "CodeSystem", "url": "http://example.org/cs/demo", "version": version,
        "name": "Demo", "status": "active", "content": "complete", "language": "en",
        "caseSensitive": False, "hierarchyMeaning": "is-a",
        "property": [{"code": "parent", "type": "code"}, {"code": "organ", "type": "code"},
                     {"code": "severity", "type": "integer"}],
        "concept": [
            {"code": "CVD", "display": "Cardiovascular disease", "designation": zh("心血管疾病"),
             "concept": [
                 {"code": "HTN", "display": "Hypertension", "designation": zh("高血压"),
                  "property": [{"code": "organ", "valueCode": "vessel"}],
                  "concept": [
                      {"code": "HTN1", "display": "Hypertension grade 1",
                       "designation": zh("高血压1级"),
                       "property": [{"code": "severity", "valueInteger": 1}]},
                      {"code": "HTN3", "display": "Hypertension grade 3",
                       "designation": zh("高血压3级"),
                       "property": [{"code": "severity", "valueInteger": 3}]},
                  ]},
                 {"code": "MI", "display": "Myocardial infarction",
                  "designation": zh("心肌梗死"),
                  "property": [{"code": "organ", "valueCode": "heart"}]},
             ]},
            {"code": "DM", "display": "Diabetes mellitus", "designation": zh("糖尿病"),
             "concept": [{"code": "DM2", "display": "Type 2 diabetes",
                          "designation": zh("2型糖尿病")}]},
            # A second parent by property: diabetic nephropathy is under DM and kidney.
            {"code": "KD", "display": "Kidney disease", "designation": zh("肾脏病")},
            {"code": "DKD", "display": "Diabetic kidney disease", "designation": zh("糖尿病肾病"),
             "property": [{"code": "parent", "valueCode": "DM"},
                          {"code": "parent", "valueCode": "KD"}]},
            {"code": "OLD", "display": "Obsolete finding",
             "property": [{"code": "inactive", "valueBoolean": True}]},
            {"code": "GRP", "display": "Grouping only",
             "property": [{"code": "notSelectable", "valueBoolean": True}]},
        ],
    }


DEMO = "http://example.org/cs/demo"


def value_sets() -> list[dict[str, Any]]:
    return [
        {"resourceType": "ValueSet", "url": "http://example.org/vs/cvd", "status": "active",
         "name": "CVD", "compose": {"include": [{"system": DEMO, "filter": [
             {"property": "concept", "op": "is-a", "value": "CVD"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/cvd-no-mi",
         "status": "active", "compose": {
             "include": [{"valueSet": ["http://example.org/vs/cvd"]}],
             "exclude": [{"system": DEMO, "concept": [{"code": "MI"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/all-demo",
         "status": "active", "compose": {"include": [{"system": DEMO}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/listed", "status": "active",
         "compose": {"include": [
             {"system": DEMO, "concept": [{"code": "DM2", "display": "T2DM"},
                                          {"code": "HTN"}]},
             {"system": "http://unknown.example/cs", "concept": [
                 {"code": "X1", "display": "Something listed"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/loop-a", "status": "active",
         "compose": {"include": [{"valueSet": ["http://example.org/vs/loop-b"]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/loop-b", "status": "active",
         "compose": {"include": [{"valueSet": ["http://example.org/vs/loop-a"]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/icd-cn", "status": "active",
         "compose": {"include": [{"system": ICD10_CN_URL}]}},
    ]


def concept_maps() -> list[dict[str, Any]]:
    return [
        {"resourceType": "ConceptMap", "url": "http://example.org/cm/lab-to-loinc",
         "status": "active", "sourceUri": "http://example.org/vs/local-lab",
         "targetUri": "http://loinc.org/vs",
         "group": [{"source": LOCAL_LAB, "target": "http://loinc.org", "element": [
             {"code": "LAB-GLU", "display": "血糖", "target": [
                 {"code": "2345-7", "display": "Glucose [Mass/volume] in Serum or Plasma",
                  "equivalence": "equivalent"}]},
             {"code": "LAB-CR", "target": [
                 {"code": "2160-0", "equivalence": "wider"}]},
             {"code": "LAB-NONE", "target": [{"equivalence": "unmatched"}]},
             {"code": "LAB-DEP", "target": [
                 {"code": "2339-0", "equivalence": "equivalent", "dependsOn": [
                     {"property": "http://example.org/specimen", "value": "BLD"}]}]},
         ]}]},
        {"resourceType": "ConceptMap", "url": "http://example.org/cm/dx", "status": "active",
         "group": [
             {"source": LOCAL_DX, "target": DEMO, "element": [
                 {"code": "gxy", "target": [{"code": "HTN", "equivalence": "equivalent"}]}],
              "unmapped": {"mode": "other-map", "url": "http://example.org/cm/dx-fallback"}},
         ]},
        {"resourceType": "ConceptMap", "url": "http://example.org/cm/dx-fallback",
         "status": "active", "group": [
             {"source": LOCAL_DX, "target": DEMO, "element": [
                 {"code": "tnb", "target": [{"code": "DM", "equivalence": "equivalent"}]}],
              "unmapped": {"mode": "fixed", "code": "GRP", "display": "Grouping only"}}]},
        {"resourceType": "ConceptMap", "url": "http://example.org/cm/provided",
         "status": "active", "group": [
             {"source": "http://example.org/cs/same", "target": DEMO,
              "unmapped": {"mode": "provided"}}]},
    ]



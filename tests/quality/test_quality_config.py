"""Region configuration: enabling, disabling and tuning rules without code changes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from huitong.quality import (
    Category,
    ExpressionCheck,
    InMemoryContext,
    QualityConfigError,
    Rule,
    RuleSet,
    Severity,
    assess,
    load_config_file,
)

NOW = 1_717_200_000_000_000  # 2024-06-01T00:00:00Z


def bp(systolic: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "category": [{"coding": [{"system": "urn:x", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2020-01-01T08:00:00Z",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": systolic, "system": "http://unitsofmeasure.org",
                                  "code": "mm[Hg]"},
            }
        ],
    }  # fmt: skip


def failed(rules: RuleSet, resource: dict[str, Any]) -> dict[str, Severity]:
    return {
        f.rule_id: f.severity for f in assess(resource, InMemoryContext(now=NOW), rules).findings
    }


def applied(rules: RuleSet, resource: dict[str, Any]) -> set[str]:
    return set(assess(resource, InMemoryContext(now=NOW), rules).applicable)


def test_defaults() -> None:
    rules = RuleSet.from_config({})
    assert failed(rules, bp(350))["observation.systolic-in-range"] is Severity.WARN
    assert "observation.arrived-in-time" in failed(rules, bp(120))


def test_parameters_are_tuned_per_region() -> None:
    strict = RuleSet.from_config(
        {"rules": {"observation.systolic-in-range": {"params": {"low": 60, "high": 250}}}}
    )
    assert "observation.systolic-in-range" in failed(strict, bp(260))
    assert "observation.systolic-in-range" not in failed(RuleSet.default(), bp(260))
    finding = next(
        f
        for f in assess(bp(260), InMemoryContext(now=NOW), strict).findings
        if f.rule_id == "observation.systolic-in-range"
    )
    assert "60–250" in finding.message_en and "60–250" in finding.message_zh


def test_severity_and_enabled_per_rule() -> None:
    rules = RuleSet.from_config(
        {
            "rules": {
                "observation.systolic-in-range": {"severity": "reject"},
                "observation.arrived-in-time": {"enabled": False},
            }
        }
    )
    assert failed(rules, bp(350))["observation.systolic-in-range"] is Severity.REJECT
    assert "observation.arrived-in-time" not in applied(rules, bp(120))
    assert not rules.rule("observation.arrived-in-time").enabled


def test_a_rule_entry_wins_over_its_category() -> None:
    rules = RuleSet.from_config(
        {
            "categories": {
                "timeliness": {"enabled": False},
                "plausibility": {"severity": "reject"},
            },
            "rules": {
                "observation.arrived-in-time": {"enabled": True},
                "observation.diastolic-in-range": {"severity": "warn"},
            },
        }
    )
    assert "observation.arrived-in-time" in applied(rules, bp(120))
    assert not rules.rule("encounter.arrived-in-time").enabled
    assert rules.rule("observation.systolic-in-range").severity is Severity.REJECT
    assert rules.rule("observation.diastolic-in-range").severity is Severity.WARN


def test_rules_shipped_off_can_be_switched_on() -> None:
    optional = Rule(
        "observation.has-note", Category.COMPLETENESS, Severity.WARN, ("Observation",),
        "No note.", "没有备注。", ExpressionCheck("note.exists()"), enabled=False,
    )  # fmt: skip
    assert "observation.has-note" not in applied(RuleSet([optional]), bp(120))
    on = RuleSet.from_config({"rules": {"observation.has-note": {"enabled": True}}}, [optional])
    assert "observation.has-note" in failed(on, bp(120))


def test_json_and_toml_files_say_the_same(tmp_path: Path) -> None:
    toml = tmp_path / "region.toml"
    toml.write_text(
        'version = 1\nregion = "demo"\n'
        "[categories.timeliness]\nenabled = false\n"
        '[rules."observation.systolic-in-range"]\nseverity = "reject"\n'
        "params = { low = 50, high = 280 }\n",
        encoding="utf-8",
    )
    document = {
        "version": 1,
        "region": "demo",
        "categories": {"timeliness": {"enabled": False}},
        "rules": {
            "observation.systolic-in-range": {
                "severity": "reject",
                "params": {"low": 50, "high": 280},
            }
        },
    }
    js = tmp_path / "region.json"
    js.write_text(json.dumps(document), encoding="utf-8")
    assert load_config_file(toml) == load_config_file(js) == document
    rules = RuleSet.from_config(load_config_file(toml))
    assert rules.region == "demo"
    assert failed(rules, bp(290)) == {"observation.systolic-in-range": Severity.REJECT}


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"colour": "red"}, "colour"),
        ({"version": 2}, "version"),
        ({"region": 5}, "region"),
        ({"rules": []}, "rules"),
        ({"rules": {"no.such-rule": {}}}, "rules.no.such-rule"),
        ({"rules": {"patient.gender-present": "off"}}, "rules.patient.gender-present"),
        ({"rules": {"patient.gender-present": {"enabled": "no"}}},
         "rules.patient.gender-present.enabled"),
        ({"rules": {"patient.gender-present": {"severity": "error"}}},
         "rules.patient.gender-present.severity"),
        ({"rules": {"patient.gender-present": {"colour": 1}}}, "rules.patient.gender-present.colour"),
        ({"rules": {"patient.gender-present": {"params": {"x": 1}}}},
         "rules.patient.gender-present.params.x"),
        ({"rules": {"observation.systolic-in-range": {"params": {"high": "300"}}}},
         "rules.observation.systolic-in-range.params.high"),
        ({"rules": {"observation.systolic-in-range": {"params": {"high": True}}}},
         "rules.observation.systolic-in-range.params.high"),
        ({"rules": {"observation.systolic-in-range": {"params": {"codes": "8480-6"}}}},
         "rules.observation.systolic-in-range.params.codes"),
        ({"rules": {"observation.systolic-in-range": {"params": {"low": 400}}}},
         "rules.observation.systolic-in-range.params"),
        ({"categories": {"accuracy": {}}}, "categories.accuracy"),
        ({"categories": {"timeliness": {"params": {}}}}, "categories.timeliness.params"),
    ],
)  # fmt: skip
def test_invalid_documents_are_refused_with_bilingual_reasons(
    document: dict[str, Any], path: str
) -> None:
    with pytest.raises(QualityConfigError) as caught:
        RuleSet.from_config(document)
    problems = caught.value.problems
    assert [p.path for p in problems] == [path]
    assert problems[0].message_en
    assert re.search(r"[\u4e00-\u9fff]", problems[0].message_zh)
    assert path in str(caught.value) and path in caught.value.message_zh


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(QualityConfigError) as caught:
        RuleSet.from_config(
            {
                "version": 3,
                "rules": {
                    "nope": {},
                    "patient.gender-present": {"severity": "fatal", "enabled": 1},
                },
            }
        )
    assert len(caught.value.problems) == 4


def test_list_parameters_accept_lists_of_text() -> None:
    rules = RuleSet.from_config(
        {"rules": {"observation.systolic-in-range": {"params": {"codes": ["8480-6", "x-1"]}}}}
    )
    assert rules.rule("observation.systolic-in-range").params["codes"] == ("8480-6", "x-1")


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("rules = [", encoding="utf-8")
    with pytest.raises(QualityConfigError):
        load_config_file(bad)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(QualityConfigError):
        load_config_file(listed)


PERFORMER = {
    "category": "completeness",
    "severity": "warn",
    "resource_types": ["Observation"],
    "expect": "performer.exists()",
    "when": "status = 'final'",
    "expression": "Observation.performer",
    "message_en": "A final Observation names no performer.",
    "message_zh": "已完成的 Observation 未注明执行者。",
}


def test_regions_add_their_own_expression_rules() -> None:
    rules = RuleSet.from_config({"custom": {"region.performer-present": PERFORMER}})
    finding = next(
        f
        for f in assess(bp(120), InMemoryContext(now=NOW), rules).findings
        if f.rule_id == "region.performer-present"
    )
    assert finding.category is Category.COMPLETENESS and finding.severity is Severity.WARN
    assert finding.expression == "Observation.performer"
    assert finding.message_zh == "已完成的 Observation 未注明执行者。"
    with_performer = {**bp(120), "performer": [{"reference": "Practitioner/x"}]}
    assert "region.performer-present" in applied(rules, with_performer)
    assert "region.performer-present" not in failed(rules, with_performer)


def test_custom_rules_take_parameters_and_overrides() -> None:
    rule = {
        **PERFORMER,
        "expect": "component.count() <= %most",
        "when": None,
        "params": {"most": 2},
        "message_en": "More than {most} components.",
        "message_zh": "分量多于 {most} 个。",
    }
    del rule["when"]
    document = {
        "custom": {"region.few-components": rule},
        "rules": {"region.few-components": {"params": {"most": 0}, "severity": "reject"}},
    }
    rules = RuleSet.from_config(document)
    assert failed(rules, bp(120))["region.few-components"] is Severity.REJECT
    finding = next(
        f
        for f in assess(bp(120), InMemoryContext(now=NOW), rules).findings
        if f.rule_id == "region.few-components"
    )
    assert finding.message_en == "More than 0 components."


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"category": "accuracy"}, "custom.r.category"),
        ({"severity": "fatal"}, "custom.r.severity"),
        ({"resource_types": ["Observatoin"]}, "custom.r.resource_types"),
        ({"resource_types": "Observation"}, "custom.r.resource_types"),
        ({"expect": "performer.matches('x')"}, "custom.r.expect"),
        ({"when": "status = "}, "custom.r.when"),
        ({"expect": ""}, "custom.r.expect"),
        ({"enabled": "yes"}, "custom.r.enabled"),
        ({"params": {"codes": ["a"]}}, "custom.r.params"),
        ({"colour": "red"}, "custom.r.colour"),
        ({"message_zh": None}, "custom.r.message_zh"),
    ],
)
def test_custom_rules_are_validated(change: dict[str, Any], path: str) -> None:
    entry = {**PERFORMER, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(QualityConfigError) as caught:
        RuleSet.from_config({"custom": {"r": entry}})
    assert [p.path for p in caught.value.problems] == [path]
    assert re.search(r"[\u4e00-\u9fff]", caught.value.problems[0].message_zh)


def test_custom_rules_cannot_shadow_shipped_ones() -> None:
    with pytest.raises(QualityConfigError) as caught:
        RuleSet.from_config({"custom": {"patient.gender-present": PERFORMER}})
    assert caught.value.problems[0].path == "custom.patient.gender-present"

"""Scores, trends, worst rules, and the report in JSON, CSV and HTML."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from huitong.quality import (
    Category,
    CheckCount,
    InMemoryContext,
    RuleSet,
    Score,
    Tally,
    assess,
    build_report,
    count_checks,
    month_of,
    render_csv,
    render_html,
    render_json,
    render_report,
    render_rule_catalogue,
)

RULES = RuleSet.default()
STAMP = "2024-06-01T00:00:00Z"
H1, H2 = "Organization/h1", "Organization/h2"


def rows() -> list[CheckCount]:
    """Two hospitals over three months; h1 improves, h2 gets worse in May."""
    c = Category
    data = [
        (H1, "2024-03", "patient.gender-present", c.COMPLETENESS, 100, 20),
        (H1, "2024-03", "observation.systolic-in-range", c.PLAUSIBILITY, 50, 5),
        (H1, "2024-04", "patient.gender-present", c.COMPLETENESS, 100, 10),
        (H1, "2024-04", "observation.systolic-in-range", c.PLAUSIBILITY, 50, 0),
        (H1, "2024-05", "patient.gender-present", c.COMPLETENESS, 100, 0),
        (H1, "2024-05", "observation.arrived-in-time", c.TIMELINESS, 40, 4),
        (H2, "2024-04", "patient.gender-present", c.COMPLETENESS, 10, 0),
        (H2, "2024-05", "patient.gender-present", c.COMPLETENESS, 10, 5),
        (H2, "2024-05", "retired.rule", c.CONFORMANCE, 10, 1),
    ]
    return [CheckCount(*row) for row in data]


def test_score_arithmetic() -> None:
    assert Score(0, 0).pass_rate is None
    assert Score(4, 1).pass_rate == 0.75
    assert Score(4, 1) + Score(6, 1) == Score(10, 2)
    assert Score(10, 2).passed == 8


def test_month_of() -> None:
    last_moment_of_may_utc = 1_717_199_999_999_999
    assert month_of(last_moment_of_may_utc) == "2024-05"
    assert month_of(last_moment_of_may_utc, utc_offset_minutes=480) == "2024-06"


def test_assessments_become_counts_that_add_up() -> None:
    ctx = InMemoryContext(now=1_717_200_000_000_000)
    good = {"resourceType": "Patient", "id": "a", "identifier": [{"system": "x", "value": "1"}],
            "name": [{"text": "张三"}], "gender": "male", "birthDate": "1980-01-01",
            "telecom": [{"system": "phone", "value": "1"}]}  # fmt: skip
    bad = {**good, "id": "b", "gender": None}
    bad.pop("gender")
    tally = Tally()
    for patient in (good, bad, bad):
        a = assess(patient, ctx, RULES)
        tally.add(count_checks(a, RULES, H1, "2024-05"))
    counts = {r.rule_id: (r.applicable, r.failed) for r in tally.rows()}
    assert counts["patient.gender-present"] == (3, 2)
    assert counts["patient.identifier-present"] == (3, 0)
    assert all(r.organization == H1 and r.month == "2024-05" for r in tally.rows())
    tally.add_assessment(assess(good, ctx, RULES), RULES, H2, "2024-05")
    assert {r.organization for r in tally.rows()} == {H1, H2}


def test_report_for_one_institution_and_month() -> None:
    report = build_report(rows(), generated_at=STAMP, rules=RULES, organization=H1,
                          month="2024-05")  # fmt: skip
    assert report.overall == Score(140, 4)
    assert report.categories[Category.COMPLETENESS] == Score(100, 0)
    assert report.categories[Category.TIMELINESS] == Score(40, 4)
    assert report.categories[Category.CONSISTENCY].pass_rate is None
    assert report.organizations == {H1: Score(140, 4)}
    assert [m.month for m in report.trend] == ["2024-03", "2024-04", "2024-05"]
    march, april, may = report.trend
    assert march.score == Score(150, 25) and march.change is None
    assert april.change == pytest.approx((1 - 10 / 150) - (1 - 25 / 150))
    assert may.categories[Category.PLAUSIBILITY] == Score(0, 0)
    assert [r.rule_id for r in report.worst_rules] == ["observation.arrived-in-time"]
    worst = report.worst_rules[0]
    assert worst.score == Score(40, 4) and worst.category is Category.TIMELINESS
    assert "30" in worst.message_en and "{" not in worst.message_en + worst.message_zh
    assert report.rules_checked == 2


def test_report_over_everything_ranks_rules_and_institutions() -> None:
    report = build_report(rows(), generated_at=STAMP, rules=RULES, worst=2, trend_months=2)
    assert report.overall == Score(470, 45)
    assert report.organizations == {H1: Score(440, 39), H2: Score(30, 6)}
    assert [r.rule_id for r in report.worst_rules] == [
        "patient.gender-present",
        "observation.systolic-in-range",
    ]
    assert [m.month for m in report.trend] == ["2024-04", "2024-05"]
    unknown = build_report(
        rows(), generated_at=STAMP, rules=RULES, organization=H2, month="2024-05"
    )
    retired = next(r for r in unknown.worst_rules if r.rule_id == "retired.rule")
    assert retired.severity is None and retired.message_en == "retired.rule"


def test_trend_stops_at_the_report_month() -> None:
    report = build_report(rows(), generated_at=STAMP, organization=H1, month="2024-04")
    assert [m.month for m in report.trend] == ["2024-03", "2024-04"]


def test_json_rendering() -> None:
    report = build_report(rows(), generated_at=STAMP, rules=RULES, organization=H1,
                          month="2024-05", region="demo")  # fmt: skip
    data = json.loads(render_json(report))
    assert data["region"] == "demo" and data["month"] == "2024-05"
    assert data["overall"] == {"applicable": 140, "failed": 4, "passRate": round(136 / 140, 6)}
    assert data["categories"]["consistency"]["passRate"] is None
    assert [t["month"] for t in data["trend"]] == ["2024-03", "2024-04", "2024-05"]
    assert data["trend"][0]["change"] is None
    assert data["worstRules"][0]["rule"] == "observation.arrived-in-time"
    assert data["worstRules"][0]["severity"] == "warn"
    assert set(data["worstRules"][0]["message"]) == {"en", "zh"}


def test_csv_rendering() -> None:
    report = build_report(rows(), generated_at=STAMP, rules=RULES, organization=H1,
                          month="2024-05")  # fmt: skip
    table = list(csv.DictReader(io.StringIO(render_csv(report))))
    overall = [r for r in table if r["section"] == "overall"]
    assert overall == [{"section": "overall", "organization": H1, "month": "2024-05",
                        "category": "", "rule": "", "applicable": "140", "failed": "4",
                        "pass_rate": f"{136 / 140:.6f}"}]  # fmt: skip
    assert len([r for r in table if r["section"] == "category"]) == len(Category)
    assert [r["month"] for r in table if r["section"] == "trend"] == [
        "2024-03", "2024-04", "2024-05",
    ]  # fmt: skip
    consistency = next(r for r in table if r["section"] == "category"
                       and r["category"] == "consistency")  # fmt: skip
    assert consistency["pass_rate"] == ""
    assert [r["rule"] for r in table if r["section"] == "rule"] == ["observation.arrived-in-time"]


def test_html_is_self_contained_bilingual_and_escaped() -> None:
    hostile = [CheckCount("<script>alert(1)</script>", "2024-05", "patient.gender-present",
                          Category.COMPLETENESS, 3, 1)]  # fmt: skip
    page = render_html(build_report(rows() + hostile, generated_at=STAMP, rules=RULES))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page.lower().replace("&lt;script", "")
    assert not re.search(r"<link|src=|href=|@import|url\(", page)
    for text in ("Data quality report", "数据质量报告", "By category", "按类别", "Timeliness",
                 "及时性", "patient.gender-present", "月度趋势", "<svg"):  # fmt: skip
        assert text in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_empty_report_renders() -> None:
    report = build_report([], generated_at=STAMP)
    assert report.overall.pass_rate is None and report.trend == ()
    page = render_html(report)
    assert "No rule failed." in page and "没有未通过的规则" in page
    assert json.loads(render_json(report))["overall"]["passRate"] is None
    assert render_csv(report).splitlines()[1].startswith("overall,")


def test_render_report_dispatches_by_format() -> None:
    report = build_report(rows(), generated_at=STAMP)
    media, text = render_report(report, "csv")
    assert media.startswith("text/csv") and text == render_csv(report)
    assert render_report(report, "json")[1] == render_json(report)
    assert render_report(report, "html")[0].startswith("text/html")
    with pytest.raises(ValueError, match="html, csv, json"):
        render_report(report, "pdf")


def test_rules_describe_themselves_for_the_api() -> None:
    rule = RuleSet.from_config(
        {"rules": {"observation.systolic-in-range": {"params": {"high": 250}}}}
    ).rule("observation.systolic-in-range")
    data = json.loads(json.dumps(rule.to_json()))
    assert data["params"]["high"] == 250 and data["params"]["codes"] == ["8480-6"]
    assert data["check"] == {"predicate": "quantity-in-range", "when": None}
    assert data["category"] == "plausibility" and data["resourceTypes"] == ["Observation"]
    gender = RULES.rule("patient.gender-present").to_json()
    assert gender["check"] == {"expression": "gender.exists()", "when": None}


def test_rule_catalogue_lists_every_rule_as_configured() -> None:
    rules = RuleSet.from_config(
        {"rules": {"patient.gender-present": {"enabled": False, "severity": "reject"}}}
    )
    page = render_rule_catalogue(rules.rules)
    for rule in rules.rules:
        assert f"| `{rule.id}` |" in page
    assert "| `patient.gender-present` | Completeness 完整性 | reject (off) |" in page
    assert "`high` = 300" in page and "## Immunization" in page

"""The shipped rules over real Synthea records: nothing crashes, clean data is not rejected."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from huitong.quality import Category, InMemoryContext, RuleSet, Tally, assess, build_report
from huitong_testdata import synthea_bundles

# 2019-06-01T00:00:00Z: the sample was generated in 2019, so its records are in the past.
GENERATED = 1_559_347_200_000_000


def _resources(limit: int) -> list[dict[str, Any]]:
    """Resources of the first patient bundles, with ``urn:uuid:`` references rewritten to
    ``Type/id`` as the repository's transaction processing does."""
    out: list[dict[str, Any]] = []
    for raw in synthea_bundles(limit, patients_only=True):
        bundle = json.loads(raw)
        text = raw.decode("utf-8")
        for entry in bundle["entry"]:
            resource = entry["resource"]
            rid = resource.get("id") or entry["fullUrl"].rsplit(":", 1)[-1]
            text = text.replace(f'"{entry["fullUrl"]}"', f'"{resource["resourceType"]}/{rid}"')
        for entry in json.loads(text)["entry"]:
            resource = entry["resource"]
            resource.setdefault("id", entry["fullUrl"].rsplit(":", 1)[-1])
            out.append(resource)
    return out


def test_synthea_records_are_checked_without_rejections() -> None:
    resources = _resources(4)
    ctx = InMemoryContext(now=GENERATED)
    for r in resources:
        if r["resourceType"] == "Patient":
            ctx.add_patient(r)
    rules = RuleSet.from_config({"categories": {"timeliness": {"enabled": False}}})
    tally = Tally()
    failures: Counter[str] = Counter()
    checked: Counter[str] = Counter()
    for resource in resources:
        assessment = assess(resource, ctx, rules)
        assert not assessment.rejected, [f.rule_id for f in assessment.rejections]
        for f in assessment.findings:
            failures[f.rule_id] += 1
        checked[resource["resourceType"]] += len(assessment.applicable)
        tally.add_assessment(assessment, rules, "Organization/synthea", "2019-06")
    # Every clinical type with rules was actually checked.
    for rtype in ("Patient", "Observation", "Condition", "Encounter", "Procedure",
                  "Immunization", "MedicationRequest", "DiagnosticReport"):  # fmt: skip
        assert checked[rtype] > 0, rtype
    report = build_report(tally.rows(), generated_at="2019-06-01T00:00:00Z", rules=rules)
    assert report.overall.applicable > 5 * len(resources) // 2
    assert report.overall.pass_rate is not None and report.overall.pass_rate > 0.95
    assert report.categories[Category.TIMELINESS].applicable == 0
    # Synthea gives vital signs plausible values and units that fit their LOINC tests.
    assert not {r for r in failures if r.endswith("-in-range") or r.endswith("fits-test")}

"""The engine: applicability, findings, rejections, predicates, facts, dates and units."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import huitong.quality as quality
from huitong.fhir.dates import parse_date_range
from huitong.fhir.errors import CATEGORY_INFO
from huitong.fhir.errors import Category as ErrorCategory
from huitong.quality import (
    Category,
    ExpressionCheck,
    Facts,
    InMemoryContext,
    Outcome,
    PredicateCheck,
    RecordedSex,
    Rule,
    RuleSet,
    Severity,
    Subject,
    assess,
    evaluate,
    finding_issues,
    predicate,
    rejection_error,
)
from huitong.quality.model import ParamValue, format_message
from huitong.quality.predicates import date_range, number
from huitong.quality.units import conversion, dimension_of

NOW = 1_717_200_000_000_000


def _rule(rule_id: str, check: Any, severity: Severity = Severity.WARN, **params: Any) -> Rule:
    return Rule(
        rule_id, Category.COMPLETENESS, severity, ("Observation",),
        f"{rule_id} failed ({{detail}})", f"{rule_id} 未通过（{{detail}}）", check, params,
    )  # fmt: skip


@predicate("test-engine-note-length")
def _note_length(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    notes = resource.get("note")
    if not notes:
        return None
    text = notes[0].get("text", "")
    if len(text) > number(params, "max"):
        return Outcome(False, "Observation.note[0].text", {"detail": len(text)})
    return Outcome(True)


RULES = RuleSet(
    [
        _rule("t.status", ExpressionCheck("status.exists()", expression="Observation.status"),
              Severity.REJECT),
        _rule("t.final-value", ExpressionCheck("value.exists()", when="status = 'final'")),
        _rule("t.note", PredicateCheck("test-engine-note-length"), max=5),
        _rule("t.note-when", PredicateCheck("test-engine-note-length", when="status = 'final'"),
              max=100),
    ]
)  # fmt: skip


def test_applicable_and_findings() -> None:
    ctx = InMemoryContext(now=NOW)
    a = assess({"resourceType": "Observation", "id": "x", "status": "draft"}, ctx, RULES)
    assert a.applicable == ("t.status",)  # when false, predicates with nothing to check
    assert a.findings == ()
    assert not a.rejected

    b = assess(
        {"resourceType": "Observation", "status": "final", "note": [{"text": "far too long"}]},
        ctx,
        RULES,
    )
    assert b.applicable == ("t.status", "t.final-value", "t.note", "t.note-when")
    assert [f.rule_id for f in b.findings] == ["t.final-value", "t.note"]
    note = b.findings[1]
    assert note.message_en == "t.note failed (12)"
    assert note.message_zh == "t.note 未通过（12）"
    assert note.expression == "Observation.note[0].text"
    assert note.resource_ref == "Observation"  # no id yet
    assert note.to_json()["message"] == {"en": note.message_en, "zh": note.message_zh}
    assert evaluate(
        {"resourceType": "Observation", "status": "final", "note": [{"text": "far too long"}]},
        ctx,
        RULES,
    ) == list(b.findings)


def test_other_types_and_odd_input_are_not_checked() -> None:
    ctx = InMemoryContext(now=NOW)
    assert assess({"resourceType": "Patient"}, ctx, RULES).applicable == ()
    assert assess({"no": "type"}, ctx, RULES).applicable == ()


def test_rejection_becomes_an_unprocessable_error_with_every_finding() -> None:
    ctx = InMemoryContext(now=NOW)
    a = assess({"resourceType": "Observation", "id": "o9", "note": [{"text": "123456"}]}, ctx,
               RULES)  # fmt: skip
    assert a.rejected and [f.rule_id for f in a.rejections] == ["t.status"]
    error = rejection_error(a)
    assert error is not None
    assert error.category is ErrorCategory.UNPROCESSABLE
    assert error.status == 422
    assert CATEGORY_INFO[error.category].hl7v2_ack in ("AE", "AR")
    assert [i.severity for i in error.issues] == ["error", "warning"]
    assert error.issues[0].expression == "Observation.status"
    assert error.issues[0].code == "business-rule"
    assert "[t.status]" in error.issues[0].message and "未通过" in error.issues[0].message

    warn_only = assess({"resourceType": "Observation", "status": "final"}, ctx, RULES)
    assert warn_only.findings and rejection_error(warn_only) is None
    assert [i.severity for i in finding_issues(warn_only.findings)] == ["warning"]


def test_registry_and_rule_set_refuse_mistakes() -> None:
    with pytest.raises(ValueError, match="already registered"):
        predicate("test-engine-note-length")(lambda r, f, p: None)
    with pytest.raises(ValueError, match="no predicate registered"):
        RuleSet([_rule("t.x", PredicateCheck("no-such-predicate"))])
    with pytest.raises(ValueError, match="duplicate rule id"):
        RuleSet([_rule("t.x", ExpressionCheck("status.exists()"))] * 2)
    with pytest.raises(ValueError, match=r"rule t\.bad"):
        RuleSet([_rule("t.bad", ExpressionCheck("status.exists(("))])
    with pytest.raises(ValueError, match="must list codes"):
        RuleSet([_rule("t.g", PredicateCheck("quantity-in-range"), codes="8480-6")])


class CountingContext:
    """A context that counts what the engine asks, to prove facts are fetched lazily."""

    def __init__(self) -> None:
        self.now = NOW
        self.received_at: int | None = None
        self.live_since: int | None = None
        self.source_organization: str | None = None
        self.subject_calls = 0

    def subject(self, reference: str) -> Subject | None:
        self.subject_calls += 1
        return Subject("female", "1990-01-01") if reference == "Patient/p" else None

    def sexes_elsewhere(self, patient: Mapping[str, Any]) -> Sequence[RecordedSex]:
        return ()


def test_the_subject_is_fetched_once_and_only_when_needed() -> None:
    assert isinstance(CountingContext(), quality.QualityContext)
    ctx = CountingContext()
    assess({"resourceType": "Observation", "status": "final"}, ctx, RULES)
    assert ctx.subject_calls == 0
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
        "effectiveDateTime": "1980-01-01",
    }
    findings = evaluate(observation, ctx, RuleSet.default())
    assert ctx.subject_calls == 1  # birth, death and sex rules share one lookup
    assert "observation.effective-not-before-birth" in {f.rule_id for f in findings}


def test_code_gated_rules_run_only_for_their_codes() -> None:
    rules = RuleSet.default()
    ctx = InMemoryContext(now=NOW)
    heart = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    applied = set(assess(heart, ctx, rules).applicable)
    assert "observation.heart-rate-in-range" in applied
    assert not {"observation.systolic-in-range", "observation.glucose-in-range"} & applied
    # The same code from another system is not LOINC.
    heart["code"] = {"coding": [{"system": "urn:local", "code": "8867-4"}]}
    assert "observation.heart-rate-in-range" not in assess(heart, ctx, rules).applicable


def test_findings_come_out_in_library_order() -> None:
    rules = RuleSet.default()
    bad = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 20, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 250, "code": "mm[Hg]"}},
        ],
    }  # fmt: skip
    ids = [f.rule_id for f in evaluate(bad, InMemoryContext(now=NOW), rules)]
    order = [r.id for r in rules.rules]
    assert ids == sorted(ids, key=order.index)
    assert {"observation.systolic-in-range", "observation.diastolic-in-range",
            "observation.blood-pressure-order"} <= set(ids)  # fmt: skip


def test_format_message_is_forgiving() -> None:
    assert format_message("{a} and {b}", {"a": 1.0}) == "1 and {b}"
    assert format_message("codes: {c}", {"c": ("x", "y")}) == "codes: x, y"
    assert format_message("broken {", {"a": 1}) == "broken {"
    assert format_message("{a!z}", {"a": 1}) == "{a!z}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@settings(deadline=None)
@given(
    st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from(["Z", "+08:00", "-05:00", "+14:00", "-12:00", "+05:45"]),
    st.sampled_from(["", ".1", ".12", ".123", ".123456"]),
    st.sampled_from(["datetime", "date"]),
)
def test_fast_date_parsing_agrees_with_the_fhir_parser(
    moment: datetime, zone: str, fraction: str, kind: str
) -> None:
    if kind == "date":
        text = moment.strftime("%Y-%m-%d")
    else:
        text = moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone
    assert date_range(text) == parse_date_range(text)


@pytest.mark.parametrize(
    "text",
    ["2020-02-30", "2020-13-01T00:00:00Z", "2020-01-01T00:00:00+15:00", "0000-01-01", "soon",
     "2020-01-01T00:00:00.1234567+08:00", "2020-01-01T24:00:00Z", "2020-01-01 10:00:00Z"],
)  # fmt: skip
def test_fast_date_parsing_refuses_what_the_fhir_parser_refuses(text: str) -> None:
    try:
        expected = parse_date_range(text)
    except ValueError:
        expected = None
    assert date_range(text) == expected


def test_dates_in_microseconds() -> None:
    lo, hi = date_range("2024-06-01T08:00:00+08:00") or (0, 0)
    assert lo == 1_717_200_000_000_000 and hi == lo + 999_999
    assert _EPOCH + timedelta(microseconds=lo) == datetime(2024, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("unit", "dimension"),
    [
        ("mg/dL", (("length", -3), ("mass", 1))),
        ("mmol/L", (("length", -3), ("substance", 1))),
        ("10*9/L", (("length", -3),)),
        ("%", ()),
        ("{score}", ()),
        ("mm[Hg]", (("length", -1), ("mass", 1), ("time", -2))),
        ("not a unit", None),
    ],
)
def test_unit_dimensions(unit: str, dimension: tuple[tuple[str, int], ...] | None) -> None:
    assert dimension_of(unit) == dimension


def test_unit_conversions() -> None:
    scale, offset = conversion("[degF]", "Cel") or (0.0, 0.0)
    assert 98.6 * scale + offset == pytest.approx(37.0)
    assert conversion("[lb_av]", "kg") == pytest.approx((0.45359237, 0.0))
    assert conversion("mg/dL", "mmol/L") is None  # needs a molar mass
    assert conversion("kg", "cm") is None
    assert conversion("cm", "cm") == (1.0, 0.0)


def test_public_surface_is_explicit() -> None:
    assert len(set(quality.__all__)) == len(quality.__all__)
    for name in quality.__all__:
        assert hasattr(quality, name), name
    # submodules appear as attributes once anything imports them; only names count here
    exported = {n for n in dir(quality) if not n.startswith("_")
                and not isinstance(getattr(quality, n), types.ModuleType)}
    modules: set[str] = set()
    assert exported - modules == set(quality.__all__)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False, width=16)
    | st.sampled_from(["", "x", "final", "2020", "2020-01-01", "2020-01-01T00:00:00Z",
                       "Patient/p", "http://loinc.org", "8480-6", "mm[Hg]", "male"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["value", "code", "system", "coding", "start", "end",
                                       "reference", "text", "unit", "valueQuantity",
                                       "extension", "url"]), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
_KEYS = sorted(
    {
        "status", "code", "subject", "patient", "effectiveDateTime", "effectivePeriod", "issued",
        "valueQuantity", "component", "referenceRange", "category", "birthDate", "gender",
        "identifier", "name", "deceasedDateTime", "period", "performedPeriod", "onsetDateTime",
        "abatementDateTime", "recordedDate", "dosageInstruction", "occurrenceDateTime",
        "vaccineCode", "class", "type", "medicationCodeableConcept", "reaction",
    }
)  # fmt: skip


@settings(deadline=None, max_examples=150)
@given(
    st.sampled_from(["Patient", "Observation", "Condition", "Encounter", "Procedure",
                     "MedicationRequest", "Immunization", "DiagnosticReport",
                     "AllergyIntolerance"]),
    st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=8),
)  # fmt: skip
def test_odd_content_never_crashes_the_engine(rtype: str, content: dict[str, Any]) -> None:
    ctx = InMemoryContext(now=NOW, patients={"Patient/p": Subject("male", "2020", "2021")})
    assessment = assess({"resourceType": rtype, **content}, ctx, RuleSet.default())
    assert set(f.rule_id for f in assessment.findings) <= set(assessment.applicable)


def test_message_formatter_fills_as_format_message_does() -> None:
    """The parsed-once formatter the plans use gives format_message's answer for every
    shipped template and for the odd ones (escapes, specs, attributes, malformed)."""
    from huitong.quality.model import message_formatter
    from huitong.quality.ruleset import RuleSet

    templates = {t for r in RuleSet.default().rules for t in (r.message_en, r.message_zh)}
    templates |= {"{a} and {b}", "codes: {c}", "{", "}", "{{a}}", "a}}b{{", "{a.b}", "{0}",
                  "{}", "{a!r}", "{a:>5}", "plain", "{a}{a}", "x}y", "{a", "值 {a} 单位"}  # fmt: skip
    values: list[dict[str, Any]] = [
        {}, {"a": 1.0, "b": "x", "c": ("x", "y")}, {"a": [1, 2.5], "b": None},
        {"value": 3.0, "delay_days": 5, "code": "X", "value_unit": "mg", "days": 2, "age": 1.5},
    ]
    for template in templates:
        fill = message_formatter(template)
        for v in values:
            assert fill(v) == format_message(template, v), (template, v)
    assert message_formatter("{a} and {b}")({"a": 1.0}) == "1 and {b}"

"""The pages' pure parts: search input, charts, display helpers, the record model, the
message catalogue and CSRF tokens."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

import huitong.web
from huitong.fhir.errors import Category, FhirError
from huitong.web.charts import Band, Chart, Point, Series, line_chart_svg, time_ticks, value_ticks
from huitong.web.csrf import csrf_token, new_session_id, valid_csrf
from huitong.web.display import (
    CST,
    age_on,
    concept_text,
    format_instant_us,
    format_when,
    human_name,
    parse_when,
    quantity_text,
    reference_parts,
)
from huitong.web.i18n import DEFAULT_LANGUAGE, Translator, choose_language, load_catalogue
from huitong.web.patient_record import build_record
from huitong.web.patient_search import SearchKind, classify, patient_queries
from huitong.web.vitals import blood_pressure_readings, glucose_readings, lab_groups

SVG = "{http://www.w3.org/2000/svg}"
WEB = Path(huitong.web.__file__).parent


def test_public_surface():
    assert huitong.web.__all__ == ["WebServices", "web_routes"]
    for name in huitong.web.__all__:
        assert hasattr(huitong.web, name)


# -- patient search input --------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind"),
    [("陈慧霞", SearchKind.NAME), ("Wei Zhang", SearchKind.NAME),
     ("390102195001085586", SearchKind.RESIDENT_ID), ("11010519491231002x", SearchKind.RESIDENT_ID),
     ("390102500108558", SearchKind.RESIDENT_ID), ("138 7758 1441", SearchKind.PHONE),
     ("+86 13877581441", SearchKind.PHONE), ("008613877581441", SearchKind.PHONE),
     ("02753501", SearchKind.IDENTIFIER), ("urn:huitong:mrn:ljh1|02753501", SearchKind.IDENTIFIER),
     ("K26371389", SearchKind.IDENTIFIER)],
)
def test_classify(text, kind):
    assert classify(text) is kind


def test_queries_per_kind():
    assert patient_queries(" 陈慧霞 ", SearchKind.AUTO) == [[("name", "陈慧霞")]]
    assert patient_queries("11010519491231002x", SearchKind.AUTO) == [
        [("identifier", "11010519491231002X")]]
    phone = patient_queries("+86 138-7758-1441", SearchKind.AUTO)
    assert phone[0] == [("telecom", "+86 13877581441,+8613877581441,13877581441,008613877581441")]
    assert phone[1] == [("identifier", "+86 138-7758-1441")]  # may be a record number too
    assert patient_queries("sys|v,1", SearchKind.IDENTIFIER) == [[("identifier", "sys|v\\,1")]]
    # typed FHIR search syntax is taken literally
    assert patient_queries("a,b$c", SearchKind.NAME) == [[("name", "a\\,b\\$c")]]


@pytest.mark.parametrize(
    ("text", "kind"),
    [("", SearchKind.AUTO), ("   ", SearchKind.NAME), ("x" * 101, SearchKind.AUTO),
     ("12345", SearchKind.PHONE), ("12345", SearchKind.RESIDENT_ID), ("sys|", SearchKind.AUTO)],
)
def test_unusable_search_input_is_invalid_in_both_languages(text, kind):
    with pytest.raises(FhirError) as caught:
        patient_queries(text, kind)
    assert caught.value.category is Category.INVALID
    en, _, zh = caught.value.message.partition(" / ")
    assert en and re.search(r"[\u4e00-\u9fff]", zh)


# -- charts ----------------------------------------------------------------------------
def test_value_ticks_are_round_and_cover_the_range():
    assert value_ticks(62, 171) == [50, 100, 150, 200]
    assert value_ticks(3.9, 7.2) == [3, 4, 5, 6, 7, 8]
    for low, high in ((0.013, 0.09), (-7, 12), (1200, 98000)):
        ticks = value_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 8
        steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1
        mantissa = f"{steps.pop():e}".split("e")[0]
        assert float(mantissa) in (1.0, 2.0, 2.5, 5.0)
    ticks = value_ticks(0, 1, integer=True)
    assert ticks == [0, 1]
    assert all(t == int(t) for t in value_ticks(0, 3, integer=True))
    same = value_ticks(5, 5)
    assert same[0] <= 5 <= same[-1] and len(same) > 1


def test_time_ticks_pick_a_unit_for_the_span():
    start = datetime(2022, 3, 5, tzinfo=CST)
    years = time_ticks(start, start + timedelta(days=5 * 365))
    assert [label for _, label in years][:3] == ["2023", "2024", "2025"]
    months = time_ticks(start, start + timedelta(days=200))
    assert all(re.fullmatch(r"\d{4}-\d{2}", label) for _, label in months) and len(months) <= 8
    days = time_ticks(start, start + timedelta(days=10))
    assert all(re.fullmatch(r"\d{2}-\d{2}", label) for _, label in days)
    hours = time_ticks(start, start + timedelta(hours=20))
    assert all(re.fullmatch(r"\d{2}:00", label) for _, label in hours)
    for ticks in (years, months, days, hours):
        assert [t for t, _ in ticks] == sorted(t for t, _ in ticks)


def _chart(**kw) -> Chart:
    base = datetime(2024, 1, 1, 8, tzinfo=CST)
    series = [
        Series("收缩压 <sys>", [Point(base + timedelta(days=30 * i), 130 + i) for i in range(4)]),
        Series("Diastolic", [Point(base + timedelta(days=30 * i), 80 - i,
                                   hollow=i == 2, note="home & away") for i in range(4)], tone=1),
    ]
    return Chart(**{"chart_id": "c1", "title": "Blood pressure & more", "description": "desc <x>",
                    "unit": "mmHg", "series": series,
                    "bands": [Band(None, 140, "140"), Band(60, 90, "normal")], **kw})


def test_svg_is_wellformed_accessible_and_escaped():
    svg = line_chart_svg(_chart())
    root = ET.fromstring(svg)  # well-formed XML: every text escaped
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Blood pressure & more"
    assert root.find(f"{SVG}desc").text == "desc <x>"
    points = root.findall(f".//{SVG}circle")
    assert len(points) == 8
    assert sum(1 for p in points if "hollow" in p.get("class")) == 1
    tips = [p.find(f"{SVG}title").text for p in points]
    assert any("(home & away)" in tip for tip in tips)
    assert all("mmHg" in tip for tip in tips)
    assert len(root.findall(f".//{SVG}polyline")) == 2
    assert len(root.findall(f".//{SVG}rect[@class='band']")) == 1
    assert len(root.findall(f".//{SVG}line[@class='threshold']")) == 1
    assert "style=" not in svg  # the CSP forbids inline styles


def test_points_are_placed_by_value_and_time():
    root = ET.fromstring(line_chart_svg(_chart()))
    systolic = [p for p in root.findall(f".//{SVG}circle") if "s0" in p.get("class")]
    xs = [float(p.get("cx")) for p in systolic]
    ys = [float(p.get("cy")) for p in systolic]
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert ys == sorted(ys, reverse=True)  # rising values climb the page


def test_empty_and_single_point_charts_render():
    empty = ET.fromstring(line_chart_svg(Chart("e", "t", "d", "u", [Series("s", [])])))
    assert empty.findall(f".//{SVG}circle") == []
    one = line_chart_svg(Chart("o", "t", "d", "u", [
        Series("s", [Point(datetime(2024, 1, 1, tzinfo=UTC), 5.0)])]))
    assert len(ET.fromstring(one).findall(f".//{SVG}circle")) == 1
    lines_only = line_chart_svg(Chart("l", "t", "d", "u", [
        Series("s", [Point(datetime(2024, 1, 1, h, tzinfo=UTC), h) for h in range(5)],
               markers=False)]))
    assert "<circle" not in lines_only and "<polyline" in lines_only


# -- display ---------------------------------------------------------------------------
def test_concepts_names_and_quantities():
    concept = {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                           "display": "Systolic blood pressure"}], "text": "收缩压"}
    assert concept_text(concept, "zh-CN") == "收缩压"
    assert concept_text(concept, "en") == "Systolic blood pressure"
    assert concept_text({"coding": [{"code": "X1"}]}) == "X1"
    assert concept_text(None) == ""
    assert human_name([{"family": "张", "given": ["伟"]}]) == "张伟"
    assert human_name([{"use": "old", "text": "旧名"}, {"use": "official", "family": "Zhang",
                                                       "given": ["Wei"]}]) == "Wei Zhang"
    assert human_name([]) == ""
    assert quantity_text({"value": 6.480, "unit": "mmol/L"}) == "6.48 mmol/L"
    assert quantity_text({"value": 0.1, "comparator": "<", "code": "mg/L"}) == "<0.1 mg/L"
    assert quantity_text({}) == ""


def test_dates_and_references():
    assert format_when("2022-05-22T08:25:00+08:00") == "2022-05-22 08:25"
    assert format_when("2022-05") == "2022-05"
    assert format_when("not a date") == "not a date"
    assert parse_when("2022-05-22").tzinfo is CST
    assert parse_when("garbage") is None
    assert format_instant_us(0) == "1970-01-01 08:00:00"
    assert reference_parts({"reference": "Organization/x1"}) == ("Organization", "x1")
    assert reference_parts("Patient/p/_history/3") == ("Patient", "p")
    assert reference_parts("urn:uuid:abc") is None
    assert reference_parts("http://other.example/fhir/Patient/1") is None
    assert age_on("1950-01-08", date(2026, 1, 7)) == 75
    assert age_on("1950-01-08", date(2026, 1, 8)) == 76
    assert age_on("1950", date(2026, 1, 8)) is None


# -- the record model ------------------------------------------------------------------
def _obs(code: str, when: str, **extra) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": code},
            "effectiveDateTime": when, **extra}


def _bp(when: str, sys_: float, dia: float, **extra) -> dict:
    return _obs("85354-9", when, component=[
        {"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": sys_}},
        {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": dia}}], **extra)


def test_blood_pressure_from_panels_and_lone_components():
    readings = blood_pressure_readings([
        _bp("2024-02-01T08:00:00+08:00", 150, 95, device={"reference": "Device/d1"}),
        _bp("2024-01-01T08:00:00+08:00", 140, 90),
        _obs("8480-6", "2024-03-01", valueQuantity={"value": 133}),
        _bp("2024-04-01", 1, 1, status="entered-in-error"),
        _obs("1234-5", "2024-03-01", valueQuantity={"value": 1}),
    ], {"d1": {"deviceName": [{"name": "家用血压计"}]}})
    assert [(r.systolic, r.diastolic, r.home, r.source) for r in readings] == [
        (140, 90, False, ""), (150, 95, True, "家用血压计"), (133, None, False, "")]


def test_glucose_in_mmol_per_litre():
    readings = glucose_readings([
        _obs("2339-0", "2024-01-02", valueQuantity={"value": 126, "code": "mg/dL"}),
        _obs("15074-8", "2024-01-01", valueQuantity={"value": 6.5, "code": "mmol/L"},
             device={"reference": "Device/g"}),
    ], {})
    assert [(r.mmol_per_l, r.home) for r in readings] == [(6.5, True), (6.99, False)]


def test_lab_groups_keep_history_and_latest_range():
    lab = {"category": [{"coding": [{"code": "laboratory"}]}]}
    groups = lab_groups([
        _obs("2823-3", "2024-01-01", valueQuantity={"value": 4.1, "unit": "mmol/L"}, **lab),
        _obs("2823-3", "2024-06-01", valueQuantity={"value": 5.9, "unit": "mmol/L"},
             interpretation=[{"coding": [{"code": "H"}]}],
             referenceRange=[{"low": {"value": 3.5}, "high": {"value": 5.5}}], **lab),
        _obs("4548-4", "2023-01-01", valueQuantity={"value": 6.1, "unit": "%"}, **lab),
        _obs("8302-2", "2024-01-01", valueQuantity={"value": 170}),  # a vital sign, not a lab
    ])
    assert [g.code for g in groups] == ["2823-3", "4548-4"]
    potassium = groups[0]
    assert [p.value for p in potassium.points] == [4.1, 5.9]
    assert (potassium.low, potassium.high, potassium.range_text) == (3.5, 5.5, "3.5–5.5")
    assert potassium.latest.flag == "H" and potassium.latest.text == "5.9 mmol/L"


def test_record_counts_institutions_from_every_kind_of_source():
    patient = {"resourceType": "Patient", "id": "p", "name": [{"text": "王小明"}],
               "gender": "male", "birthDate": "1990-03-07",
               "managingOrganization": {"reference": "Organization/chc"},
               "identifier": [{"system": "s", "value": "1", "type": {"text": "病案号"}},
                              {"system": "s", "value": "0", "use": "old"}]}
    resources = [
        patient,
        {"resourceType": "Organization", "id": "hosp", "name": "第一人民医院"},
        {"resourceType": "Encounter", "id": "e1", "status": "finished",
         "class": {"code": "AMB"}, "period": {"start": "2024-01-01T08:00:00+08:00"},
         "serviceProvider": {"reference": "Organization/hosp"}},
        {"resourceType": "Condition", "id": "c1", "code": {"text": "高血压"},
         "encounter": {"reference": "Encounter/e1"}},
        _obs("2823-3", "2024-01-01", performer=[{"reference": "Organization/lab",
                                                 "display": "检验中心"}]),
        {"resourceType": "DocumentReference", "id": "d1", "status": "current",
         "custodian": {"reference": "Organization/pacs"}, "description": "出院小结"},
        {"resourceType": "MedicationRequest", "id": "m1", "status": "active",
         "medicationCodeableConcept": {"text": "氨氯地平"}, "authoredOn": "2024-01-01"},
    ]
    record = build_record(patient, resources, date(2026, 1, 1))
    names = {i.reference: i.name for i in record.institutions}
    assert names == {"Organization/chc": "chc", "Organization/hosp": "第一人民医院",
                     "Organization/lab": "检验中心", "Organization/pacs": "pacs"}
    assert record.visits[0].institution.name == "第一人民医院"
    assert record.visits[0].contents == {"Condition": 1}
    assert record.problems[0].institution.name == "第一人民医院"  # through its encounter
    assert record.medications[0].institution is None
    assert record.documents[0].institution.name == "pacs"
    assert record.demographics.age == 35
    assert [i.old for i in record.demographics.identities] == [False, True]
    tones = [i.tone for i in record.institutions]
    assert len(set(tones)) == len(tones)


# -- the catalogue ---------------------------------------------------------------------
def test_every_catalogue_entry_has_both_languages():
    entries = load_catalogue().entries
    assert len(entries) > 200
    for key, entry in entries.items():
        assert set(entry) == {"en", "zh"}, key
        assert entry["en"].strip() and entry["zh"].strip(), key
        assert re.search(r"[\u4e00-\u9fff]", entry["zh"]) or key.startswith(
            ("brand", "system.dialect.postgresql")), f"{key} has no Chinese text"
        assert set(re.findall(r"{(\w+)}", entry["en"])) == set(
            re.findall(r"{(\w+)}", entry["zh"])) or key.endswith(".one"), key


def _used_keys() -> tuple[set[str], set[str]]:
    """Keys the templates and modules ask for: literal ones, and prefixes of built ones."""
    sources = [p.read_text("utf-8") for p in WEB.glob("*.py") if p.name != "i18n.py"]
    sources += [p.read_text("utf-8") for p in (WEB / "templates").glob("*.html")]
    literal, prefixes = set(), set()
    for text in sources:
        literal |= set(re.findall(r"\bt(?:\.count)?\(\s*['\"]([a-z_][\w.\-]*)['\"]\s*[,)]", text))
        prefixes |= set(re.findall(r"\bt\(\s*['\"]([a-z_][\w.\-]*\.)['\"]\s*~", text))
        prefixes |= set(re.findall(r"\bt\(\s*f['\"]([a-z_][\w.\-]*\.)\{", text))
    return literal, prefixes


def test_every_key_the_pages_use_exists():
    entries = load_catalogue().entries
    literal, prefixes = _used_keys()
    assert len(literal) > 150 and prefixes
    counted = {k.rsplit(".", 1)[0] for k in entries if k.endswith((".one", ".other"))}
    missing = sorted(k for k in literal if k not in entries and k not in counted)
    assert missing == []
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in entries), prefix


def test_translator_and_language_choice():
    t = Translator(load_catalogue(), "en")
    assert t("patient.age", age=3) == "3 years"
    assert t.count("search.results", 1) == "1 patient found"
    assert t.count("search.results", 2) == "2 patients found"
    assert Translator(load_catalogue(), "zh-CN").count("search.results", 2) == "找到 2 位患者"
    assert t("no.such.key") == "no.such.key"
    assert choose_language(None, None) == DEFAULT_LANGUAGE == "zh-CN"
    assert choose_language("en", "zh-CN") == "en"
    assert choose_language(None, "en") == "en"
    assert choose_language("zh", None) == "zh-CN"
    assert choose_language("fr", None) == "zh-CN"


def test_static_files_are_our_own_and_load_nothing_remote():
    static = resources.files("huitong.web").joinpath("static")
    names = sorted(p.name for p in static.iterdir())
    assert names == ["app.css", "app.js"]
    for name in names:
        text = static.joinpath(name).read_text("utf-8")
        assert "http://" not in text and "https://" not in text and "@import" not in text
    for template in (WEB / "templates").glob("*.html"):
        text = template.read_text("utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), template.name
        assert "<script>" not in text and " style=" not in text, template.name


# -- CSRF ------------------------------------------------------------------------------
def test_csrf_tokens_are_per_session_and_per_secret():
    session = new_session_id()
    token = csrf_token(b"k" * 32, session)
    assert valid_csrf(b"k" * 32, session, token)
    assert not valid_csrf(b"k" * 32, new_session_id(), token)
    assert not valid_csrf(b"j" * 32, session, token)
    assert not valid_csrf(b"k" * 32, session, None)
    assert not valid_csrf(b"k" * 32, None, token)
    assert not valid_csrf(b"k" * 32, "short", csrf_token(b"k" * 32, "short"))

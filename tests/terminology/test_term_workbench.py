"""The mapping workbench: the aspirin scenario and the unmapped queue."""

from __future__ import annotations

import pytest
from term_data import DATA

from huitong.terminology import MapSet, build_index, translate_resource
from huitong.terminology.loaders import ATC_URL, load_atc
from huitong.terminology.mapping import (
    LocalConcept,
    TargetNames,
    UnmappedCode,
    accept,
    concept_map_from_decisions,
    correct,
    propose_mappings,
    unmapped_report,
)

ASPIRIN = "N02BA01"

# Twelve ways hospitals in one city wrote aspirin, each hospital with its own code system.
SPELLINGS = [
    ("h1", "A001", "阿司匹林", None, None),
    ("h2", "YP-0032", "阿斯匹林", None, None),          # common misspelling (斯 for 司)
    ("h3", "aspirin", "Aspirin", None, None),
    ("h4", "ASP100", "阿司匹林肠溶片", None, "Aspirin enteric-coated tablets"),
    ("h5", "d-77", "aspirin tab 100mg", None, None),
    ("h6", "X9", "asprin", None, None),                   # typo
    ("h7", "M-12", "乙酰水杨酸", None, None),
    ("h8", "0017", "acetylsalicylic acid", None, None),
    ("h9", "ASA81", "Acetylsalicylic acid 81 mg", None, None),
    ("h10", "py-1", "asipilin", None, None),              # typed as pinyin
    ("h11", "BAYA", "拜阿司匹灵", None, None),            # brand name spelling
    ("h12", "ASA", "ASA", None, None),                    # abbreviation: operator corrects
]


@pytest.fixture(scope="module")
def atc():
    return build_index(load_atc(DATA / "atc_ddd.csv", version="2025"))


def _local(h, code, display, zh, en):
    return LocalConcept(f"http://{h}.example/drugs", code, display, zh, en)


def test_aspirin_spellings_reach_one_standard_code(atc):
    targets = TargetNames.of(atc)
    locals_ = [_local(*s) for s in SPELLINGS]
    proposals = propose_mappings(locals_, targets, limit=3)
    decisions = []
    auto = 0
    for p in proposals:
        top = p.candidates[0] if p.candidates else None
        if top is not None and top.target_code in (ASPIRIN, "B01AC06"):
            auto += 1
            assert 0.6 <= top.confidence <= 1.0 and top.reasons
        # The operator keeps one standard code for the analgesic indication.
        if top is not None and top.target_code == ASPIRIN:
            decisions.append(accept(p.local, top, target_system=ATC_URL))
        else:
            decisions.append(correct(p.local, ASPIRIN, target_index=atc))
    assert auto >= 10  # only the bare abbreviation needs more than a click
    by_code = {p.local.code: p for p in proposals}
    assert by_code["A001"].candidates[0].confidence == 1.0  # exact Chinese name
    assert any("pinyin" in r for c in by_code["py-1"].candidates for r in c.reasons)

    cm = concept_map_from_decisions(decisions, url="http://city.example/cm/drugs",
                                    version="1", name="CityDrugs", target_scope=ATC_URL)
    assert len(cm["group"]) == 12
    assert {g["element"][0]["target"][0]["code"] for g in cm["group"]} == {ASPIRIN}
    hows = [g["element"][0]["target"][0]["comment"] for g in cm["group"]]
    assert any("accepted" in h for h in hows) and any("corrected" in h for h in hows)

    # On ingest, each hospital's prescription gains the same ATC coding beside its own.
    maps = MapSet([cm])
    for h, code, display, _, _ in SPELLINGS:
        rx = {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [
            {"system": f"http://{h}.example/drugs", "code": code, "display": display}]}}
        out = translate_resource(rx, maps)
        codings = out.resource["medicationCodeableConcept"]["coding"]
        assert codings[0] == rx["medicationCodeableConcept"]["coding"][0]
        assert codings[1] == {"system": ATC_URL, "code": ASPIRIN,
                              "display": "acetylsalicylic acid", "userSelected": False}


def test_candidates_rank_and_limit(atc):
    (p,) = propose_mappings([LocalConcept("http://h", "1", "paracetamol 500mg")], atc, limit=2)
    assert p.candidates[0].target_code == "N02BE01"
    assert len(p.candidates) <= 2
    (nothing,) = propose_mappings([LocalConcept("http://h", "2", "zzzz qqqq")], atc)
    assert nothing.candidates == ()


def test_correct_rejects_unknown_target(atc):
    with pytest.raises(ValueError):
        correct(LocalConcept("http://h", "1", "x"), "NOPE", target_index=atc)


def test_later_decision_replaces_earlier(atc):
    local = LocalConcept("http://h", "1", "阿司匹林")
    first = correct(local, "B01AC06", target_index=atc)
    second = correct(local, ASPIRIN, target_index=atc, equivalence="wider")
    cm = concept_map_from_decisions([first, second], url="u", version="1", name="n")
    (element,) = cm["group"][0]["element"]
    assert element["target"][0]["code"] == ASPIRIN
    assert element["target"][0]["equivalence"] == "wider"


def test_unmapped_report_merges_and_orders():
    report = unmapped_report([
        UnmappedCode("http://h1", "A", "甲", 5), UnmappedCode("http://h2", "B", None, 40),
        UnmappedCode("http://h1", "A", None, 7), UnmappedCode("http://h1", "C", "丙", 1),
    ], mapped=[("http://h1", "C")])
    assert [(i.code, i.affected_records) for i in report.items] == [("B", 40), ("A", 12)]
    assert report.total_records == 52 and report.total_codes == 2
    assert report.by_system() == {"http://h2": 40, "http://h1": 12}
    assert report.rows()[1] == {"system": "http://h1", "code": "A", "display": "甲",
                                "affected_records": 12}

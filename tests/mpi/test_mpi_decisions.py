"""Decisions as data and golden-record survivorship."""

from __future__ import annotations

import pytest

from huitong.mpi.decisions import decide, pair_key
from huitong.mpi.golden import GoldenSource, assemble_golden
from huitong.mpi.model import ComparisonParams, MatchModel, Thresholds
from huitong.mpi.normalize.identifiers import ID_RESIDENT
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.spec import IDENTITY_SPEC

RID = "11010519491231002X"
TWIN_RID = "110105194912310045"


def _model() -> MatchModel[IdentityRecord]:
    # Hand-set parameters: this test is about the policy, not about training.
    params = []
    for c in IDENTITY_SPEC.comparisons:
        mid = len(c.levels) - 2
        m = (0.9, *([0.099 / mid] * mid), 0.001) if mid else (0.999, 0.001)
        u = (0.01, *([0.09 / mid] * mid), 0.9) if mid else (0.5, 0.5)
        params.append(ComparisonParams(c.name, c.levels, m, u))
    return MatchModel(IDENTITY_SPEC, tuple(params), 0.01, Thresholds(0.99, 0.9, 0.5))


def _patient(pid: str, name: str, rid: str | None, birth: str = "1949-12-31",
             phone: str = "13812345678") -> IdentityRecord:  # fmt: skip
    p = {"resourceType": "Patient", "id": pid, "name": [{"text": name}], "gender": "female",
         "birthDate": birth, "telecom": [{"system": "phone", "value": phone}],
         "identifier": [{"system": ID_RESIDENT, "value": rid}] if rid else []}  # fmt: skip
    return record_from_patient(p)


def test_agreeing_resident_id_links_automatically() -> None:
    new = _patient("n", "章伟", RID)
    cand = _patient("c", "张伟", RID)
    actions = decide(new, [cand], {"Patient/c": "Patient/g1"}, set(), _model())
    assert [(a.kind, a.golden, a.auto) for a in actions] == [("link", "Patient/g1", True)]
    assert actions[0].evidence is not None and actions[0].evidence["rule"] == "resident-id-agrees"


def test_agreeing_id_with_contradicting_birth_date_is_left_to_the_weights() -> None:
    new = _patient("n", "李娜", RID, birth="1980-01-01", phone="13900000000")
    cand = _patient("c", "张伟", RID)
    actions = decide(new, [cand], {"Patient/c": "Patient/g1"}, set(), _model())
    assert all(a.evidence is None or a.evidence["rule"] is None for a in actions)
    assert "link" not in [a.kind for a in actions]


def test_uncertain_candidates_go_to_review_and_a_new_golden_is_created() -> None:
    new = _patient("n", "张伟", None, phone="13900000000")
    cand = _patient("c", "张伟", None, phone="13812345678")
    actions = decide(new, [cand], {"Patient/c": "Patient/g1"}, set(), _model())
    kinds = [a.kind for a in actions]
    assert kinds == ["review", "create-golden"]
    review = actions[0]
    assert review.grade in ("probable", "possible") and review.evidence is not None
    assert {f["comparison"] for f in review.evidence["fields"]} >= {"given_name", "phone"}


def test_certainly_not_pairs_are_never_proposed_again() -> None:
    new = _patient("n", "章伟", RID)
    cand = _patient("c", "张伟", RID)
    for memory in ({pair_key("Patient/n", "Patient/c")}, {pair_key("Patient/g1", "Patient/n")}):
        actions = decide(new, [cand], {"Patient/c": "Patient/g1"}, memory, _model())
        assert [a.kind for a in actions] == ["create-golden"]


def test_two_certain_goldens_go_to_review_instead_of_linking() -> None:
    new = _patient("n", "张伟", RID)
    c1, c2 = _patient("c1", "张伟", RID), _patient("c2", "张伟", RID)
    links = {"Patient/c1": "Patient/g1", "Patient/c2": "Patient/g2"}
    actions = decide(new, [c1, c2], links, set(), _model())
    assert sorted((a.kind, a.golden) for a in actions) == [
        ("review", "Patient/g1"), ("review", "Patient/g2"),
    ]  # fmt: skip


def test_twin_is_not_linked() -> None:
    new = _patient("n", "张丽", TWIN_RID)
    cand = _patient("c", "张伟", RID)
    actions = decide(new, [cand], {"Patient/c": "Patient/g1"}, set(), _model())
    assert "link" not in [a.kind for a in actions]


def _src(ref: str, org: str, updated: str, **elements: object) -> GoldenSource:
    return GoldenSource(ref, org, {"resourceType": "Patient", "id": ref.split("/")[1],
                                   "meta": {"lastUpdated": updated}, **elements})  # fmt: skip


def test_survivorship_prefers_trust_then_recency_then_completeness() -> None:
    hospital = _src("Patient/h", "rmyy", "2020-01-01T00:00:00Z",
                    name=[{"text": "张伟"}], birthDate="1949-12-31",
                    telecom=[{"system": "phone", "value": "13812345678"}])  # fmt: skip
    clinic = _src("Patient/c", "sqws1", "2026-01-01T00:00:00Z",
                  name=[{"text": "章伟"}], gender="female",
                  telecom=[{"system": "phone", "value": "13812345678"},
                           {"system": "phone", "value": "13900000000"}])  # fmt: skip
    golden = assemble_golden([clinic, hospital], {"rmyy": 10, "sqws1": 5}, golden_id="g1")
    assert golden["id"] == "g1"
    assert golden["name"] == [{"text": "张伟"}]  # most trusted source wins
    assert golden["gender"] == "female"  # only the clinic has it
    assert golden["birthDate"] == "1949-12-31"
    assert [t["value"] for t in golden["telecom"]] == ["13812345678", "13900000000"]
    assert golden["link"] == [
        {"other": {"reference": "Patient/c"}, "type": "seealso"},
        {"other": {"reference": "Patient/h"}, "type": "seealso"},
    ]
    # Equal trust: the more recent source wins.
    golden = assemble_golden([clinic, hospital], {})
    assert golden["name"] == [{"text": "章伟"}]


def test_survivorship_needs_a_source() -> None:
    with pytest.raises(ValueError):
        assemble_golden([], {})

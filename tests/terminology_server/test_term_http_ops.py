"""Every terminology operation over HTTP, by GET and by POST, on both engines."""

from __future__ import annotations

from typing import Any

import pytest
from term_server_helpers import DEMO, LOCAL_LAB, Client, param, parameters, params

from huitong.terminology.loaders import ICD10_CN_URL

F = "/fhir"


def _ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _outcome(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


# -- CodeSystem/$lookup -----------------------------------------------------------------------

def test_lookup_get_and_post_agree(client: Client) -> None:
    got = _ok(client.get(f"{F}/CodeSystem/$lookup",
                         params={"system": ICD10_CN_URL, "code": "E11.900"}))
    posted = _ok(client.post(f"{F}/CodeSystem/$lookup",
                             parameters(system=ICD10_CN_URL, code="E11.900")))
    assert got == posted
    assert param(got, "display") == "2型糖尿病"
    assert param(got, "version") == "2.0"


def test_lookup_with_coding_in_body(client: Client) -> None:
    answer = _ok(client.post(f"{F}/CodeSystem/$lookup", parameters(
        coding={"system": DEMO, "code": "HTN"})))
    assert param(answer, "display") == "Hypertension"
    assert any(d.get("value") == "高血压" for d in params(answer, "designation"))


def test_lookup_on_an_instance(client: Client, stored: dict[str, str]) -> None:
    answer = _ok(client.get(f"{F}/CodeSystem/{stored[DEMO]}/$lookup", params={"code": "MI"}))
    assert param(answer, "display") == "Myocardial infarction"


def test_lookup_unknown_system_is_404(client: Client) -> None:
    _outcome(client.get(f"{F}/CodeSystem/$lookup",
                        params={"system": "http://nowhere.example/cs", "code": "X"}), 404)


def test_lookup_unknown_code_and_missing_code(client: Client) -> None:
    assert client.get(f"{F}/CodeSystem/$lookup",
                      params={"system": DEMO, "code": "NOPE"}).status_code in (400, 404)
    _outcome(client.get(f"{F}/CodeSystem/$lookup", params={"system": DEMO}), 400)
    _outcome(client.get(f"{F}/CodeSystem/$lookup",
                        params=[("system", DEMO), ("code", "MI"), ("code", "DM")]), 400)


def test_lookup_on_a_missing_instance_is_404(client: Client) -> None:
    _outcome(client.get(f"{F}/CodeSystem/no-such-id/$lookup", params={"code": "MI"}), 404)


# -- CodeSystem/$validate-code ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_code_system_validate_code(client: Client, method: str) -> None:
    def call(**p: Any) -> dict[str, Any]:
        if method == "GET":
            return _ok(client.get(f"{F}/CodeSystem/$validate-code", params=p))
        return _ok(client.post(f"{F}/CodeSystem/$validate-code", parameters(**p)))

    assert param(call(url=DEMO, code="HTN1"), "result") is True
    assert param(call(url=DEMO, code="ZZZ"), "result") is False
    # Chapters are grouping concepts (notSelectable): not valid as a diagnosis.
    assert param(call(url=ICD10_CN_URL, code="E00-E90"), "result") is False


def test_code_system_validate_code_on_instance(client: Client, stored: dict[str, str]) -> None:
    answer = _ok(client.post(f"{F}/CodeSystem/{stored[DEMO]}/$validate-code", parameters(
        coding={"system": DEMO, "code": "DM", "display": "Diabetes mellitus"})))
    assert param(answer, "result") is True


# -- CodeSystem/$subsumes ---------------------------------------------------------------------

def test_subsumes_get_post_and_instance(client: Client, stored: dict[str, str]) -> None:
    got = _ok(client.get(f"{F}/CodeSystem/$subsumes",
                         params={"system": DEMO, "codeA": "CVD", "codeB": "HTN1"}))
    assert param(got, "outcome") == "subsumes"
    posted = _ok(client.post(f"{F}/CodeSystem/$subsumes", parameters(
        codingA={"system": DEMO, "code": "HTN1"}, codingB={"system": DEMO, "code": "CVD"})))
    assert param(posted, "outcome") == "subsumed-by"
    inst = _ok(client.get(f"{F}/CodeSystem/{stored[DEMO]}/$subsumes",
                          params={"codeA": "MI", "codeB": "DM"}))
    assert param(inst, "outcome") == "not-subsumed"


def test_subsumes_bad_parameters(client: Client) -> None:
    _outcome(client.get(f"{F}/CodeSystem/$subsumes", params={"system": DEMO, "codeA": "CVD"}),
             400)
    _outcome(client.post(f"{F}/CodeSystem/$subsumes", parameters(
        codingA={"system": DEMO, "code": "CVD"},
        codingB={"system": "http://other.example", "code": "X"})), 400)


# -- ValueSet/$expand ---------------------------------------------------------------------------

def _codes(vs: dict[str, Any]) -> list[str]:
    return [c["code"] for c in vs.get("expansion", {}).get("contains", [])]


def test_expand_by_url_get_and_post(client: Client) -> None:
    got = _ok(client.get(f"{F}/ValueSet/$expand", params={"url": "http://example.org/vs/cvd"}))
    assert got["resourceType"] == "ValueSet"
    assert set(_codes(got)) == {"CVD", "HTN", "HTN1", "MI"}
    posted = _ok(client.post(f"{F}/ValueSet/$expand",
                             parameters(url="http://example.org/vs/cvd")))
    assert set(_codes(posted)) == set(_codes(got))


@pytest.mark.parametrize(("text", "expected"), [
    ("高血压", {"I10.x00x002", "I10.x00x003", "I11.900"}),  # Chinese
    ("gxy", {"I10.x00x002", "I10.x00x003"}),  # pinyin initials of 高血压
    ("tangniaobing", {"E11.200x002"}),  # full pinyin
])
def test_expand_filter_chinese_and_pinyin(client: Client, text: str, expected: set[str]) -> None:
    vs = _ok(client.get(f"{F}/ValueSet/$expand",
                        params={"url": "http://example.org/vs/icd-cn", "filter": text}))
    assert expected <= set(_codes(vs)), _codes(vs)
    assert not any(c.startswith("I21") for c in _codes(vs))


def test_expand_filter_english_designation(client: Client) -> None:
    vs = _ok(client.get(f"{F}/ValueSet/$expand",
                        params={"url": "http://example.org/vs/cvd", "filter": "infarction"}))
    assert _codes(vs) == ["MI"]


def test_expand_paging(client: Client) -> None:
    url = "http://example.org/vs/icd-cn"
    everything = _ok(client.get(f"{F}/ValueSet/$expand", params={"url": url}))
    total = everything["expansion"]["total"]
    pages: list[str] = []
    for offset in range(0, total, 5):
        page = _ok(client.get(f"{F}/ValueSet/$expand",
                              params={"url": url, "offset": offset, "count": 5}))
        assert page["expansion"]["offset"] == offset and page["expansion"]["total"] == total
        pages += _codes(page)
    assert pages == _codes(everything)


def test_expand_inline_and_instance(client: Client, stored: dict[str, str]) -> None:
    inline = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": DEMO, "concept": [{"code": "DM"}, {"code": "MI"}]}]}}
    vs = _ok(client.post(f"{F}/ValueSet/$expand", parameters(valueSet=inline)))
    assert _codes(vs) == ["DM", "MI"]
    inst = _ok(client.get(f"{F}/ValueSet/{stored['http://example.org/vs/cvd']}/$expand",
                          params={"filter": "心肌"}))
    assert _codes(inst) == ["MI"]


def test_expand_bad_parameters(client: Client) -> None:
    _outcome(client.get(f"{F}/ValueSet/$expand",
                        params={"url": "http://example.org/vs/cvd", "count": "many"}), 400)
    _outcome(client.get(f"{F}/ValueSet/$expand"), 400)
    _outcome(client.get(f"{F}/ValueSet/$expand", params={"url": "http://nowhere.example/vs"}),
             404)


# -- ValueSet/$validate-code ------------------------------------------------------------------

def test_value_set_validate_code(client: Client, stored: dict[str, str]) -> None:
    url = "http://example.org/vs/cvd"
    yes = _ok(client.get(f"{F}/ValueSet/$validate-code",
                         params={"url": url, "system": DEMO, "code": "HTN1"}))
    assert param(yes, "result") is True
    no = _ok(client.post(f"{F}/ValueSet/$validate-code", parameters(
        url=url, codeableConcept={"coding": [{"system": DEMO, "code": "DM"}]})))
    assert param(no, "result") is False
    inst = _ok(client.get(f"{F}/ValueSet/{stored[url]}/$validate-code",
                          params={"system": DEMO, "code": "MI"}))
    assert param(inst, "result") is True
    _outcome(client.get(f"{F}/ValueSet/$validate-code", params={"url": url, "code": "MI"}), 400)


# -- ConceptMap/$translate --------------------------------------------------------------------

def test_translate_get_post_and_instance(client: Client, stored: dict[str, str]) -> None:
    got = _ok(client.get(f"{F}/ConceptMap/$translate",
                         params={"system": LOCAL_LAB, "code": "LAB-GLU"}))
    assert param(got, "result") is True
    assert param(got, "match")["concept"]["code"] == "2345-7"
    posted = _ok(client.post(f"{F}/ConceptMap/$translate", parameters(
        coding={"system": LOCAL_LAB, "code": "LAB-CR"},
        targetsystem="http://loinc.org")))
    assert param(posted, "match")["concept"]["code"] == "2160-0"
    cm_id = stored["http://example.org/cm/lab-to-loinc"]
    inst = _ok(client.get(f"{F}/ConceptMap/{cm_id}/$translate",
                          params={"system": LOCAL_LAB, "code": "LAB-UNKNOWN"}))
    assert param(inst, "result") is False
    reverse = _ok(client.get(f"{F}/ConceptMap/$translate", params={
        "system": "http://loinc.org", "code": "2345-7", "reverse": "true"}))
    assert param(reverse, "match")["concept"]["code"] == "LAB-GLU"


def test_translate_bad_parameters(client: Client) -> None:
    _outcome(client.get(f"{F}/ConceptMap/$translate",
                        params={"system": LOCAL_LAB, "code": "LAB-GLU", "reverse": "maybe"}), 400)
    _outcome(client.get(f"{F}/ConceptMap/$translate",
                        params={"url": "http://nowhere.example/cm", "system": LOCAL_LAB,
                                "code": "LAB-GLU"}), 404)


# -- routing ------------------------------------------------------------------------------------

def test_operation_on_the_wrong_type_is_404(client: Client) -> None:
    _outcome(client.get(f"{F}/Patient/$expand"), 404)
    _outcome(client.get(f"{F}/ValueSet/$lookup"), 404)


def test_operations_in_a_batch(client: Client) -> None:
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET",
                     "url": f"CodeSystem/$lookup?system={DEMO}&code=DM"}},
        {"request": {"method": "GET",
                     "url": "ValueSet/$expand?url=http://nowhere.example/vs"}},
    ]}
    answer = _ok(client.post(F, batch))
    first, second = answer["entry"]
    assert first["response"]["status"].startswith("200")
    assert param(first["resource"], "display") == "Diabetes mellitus"
    assert second["response"]["status"].startswith("404")

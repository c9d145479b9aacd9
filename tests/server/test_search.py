"""search: type, system, compartment, _search POST, paging, _summary, _elements, Prefer —
https://hl7.org/fhir/R4/search.html."""

from __future__ import annotations

import pytest
from server_helpers import BASE, assert_outcome, create, patient

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "Resource encoded in summary mode"}


def _obs(pid, code="8867-4"):
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}}


def test_type_search_bundle(client):
    pid = create(client, patient(gender="male"))["id"]
    create(client, patient(gender="female"))
    b = client.get("/fhir/Patient?gender=male").json()
    assert b["resourceType"] == "Bundle"
    assert b["type"] == "searchset"
    assert b["total"] == 1
    assert b["entry"] == [{
        "fullUrl": f"{BASE}/Patient/{pid}",
        "resource": client.get(f"/fhir/Patient/{pid}").json(),
        "search": {"mode": "match"},
    }]
    assert b["link"] == [
        {"relation": "self", "url": f"{BASE}/Patient?gender=male&_count=10"},
        {"relation": "first", "url": f"{BASE}/Patient?gender=male&_count=10"},
    ]


def test_paging_links_are_stable(client):
    for i in range(5):
        create(client, patient(birthDate=f"200{i}-01-01"))
    p1 = client.get("/fhir/Patient?_sort=birthdate&_count=2").json()
    assert p1["total"] == 5
    links = {x["relation"]: x["url"] for x in p1["link"]}
    assert links["next"] == f"{BASE}/Patient?_sort=birthdate&_count=2&_offset=2"
    p2 = client.get(links["next"].removeprefix("http://hie.test")).json()
    assert [e["resource"]["birthDate"] for e in p2["entry"]] == ["2002-01-01", "2003-01-01"]
    links2 = {x["relation"]: x["url"] for x in p2["link"]}
    assert links2["previous"] == f"{BASE}/Patient?_sort=birthdate&_count=2"
    assert links2["self"] == f"{BASE}/Patient?_sort=birthdate&_count=2&_offset=2"
    p3 = client.get(links2["next"].removeprefix("http://hie.test")).json()
    assert len(p3["entry"]) == 1
    assert "next" not in {x["relation"] for x in p3["link"]}


def test_post_search_merges_form_and_url(client):
    create(client, patient(gender="male", birthDate="1990-01-01"))
    create(client, patient(gender="male", birthDate="1970-01-01"))
    r = client.post("/fhir/Patient/_search?gender=male", content=b"birthdate=1990-01-01",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert r.json()["total"] == 1
    bad = client.post("/fhir/Patient/_search", content=b"{}",
                      headers={"content-type": "application/json"})
    assert_outcome(bad, 415)


def test_system_search_and_compartments(client):
    pid = create(client, patient())["id"]
    other = create(client, patient())["id"]
    create(client, _obs(pid))
    create(client, _obs(other))
    assert client.get(f"/fhir?_id={pid}").json()["total"] == 1
    r = client.post("/fhir/_search", content=f"_id={pid}".encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.json()["total"] == 1
    comp = client.get(f"/fhir/Patient/{pid}/Observation").json()
    assert comp["total"] == 1
    assert comp["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    assert comp["link"][0]["url"] == f"{BASE}/Patient/{pid}/Observation?_count=10"
    everything = client.get(f"/fhir/Patient/{pid}/*").json()
    assert {e["resource"]["resourceType"] for e in everything["entry"]} >= {"Observation"}
    assert_outcome(client.get(f"/fhir/Observation/{pid}/Patient"), 404)


def test_summary_count_and_subsetting(client):
    create(client, patient(gender="male"))
    create(client, patient(gender="male"))
    count = client.get("/fhir/Patient?_summary=count").json()
    assert count["total"] == 2
    assert "entry" not in count
    data = client.get("/fhir/Patient?_elements=gender").json()
    for e in data["entry"]:
        assert set(e["resource"]) == {"resourceType", "id", "meta", "gender"}
        assert SUBSETTED in e["resource"]["meta"]["tag"]
    text = client.get("/fhir/Patient?_summary=text").json()
    for e in text["entry"]:
        assert "gender" not in e["resource"]
        assert SUBSETTED in e["resource"]["meta"]["tag"]
    create(client, patient(text={"status": "generated",
                                 "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}))
    data = client.get("/fhir/Patient?_summary=data").json()
    assert all("text" not in e["resource"] and e["resource"]["name"] for e in data["entry"])
    assert "total" not in client.get("/fhir/Patient?_total=none").json()
    full = client.get("/fhir/Patient?_summary=false").json()
    assert all("meta" not in e["resource"] or "tag" not in e["resource"]["meta"]
               for e in full["entry"])


def test_include(client):
    pid = create(client, patient())["id"]
    create(client, _obs(pid))
    b = client.get("/fhir/Observation?_include=Observation:subject").json()
    modes = sorted((e["search"]["mode"], e["resource"]["resourceType"]) for e in b["entry"])
    assert modes == [("include", "Patient"), ("match", "Observation")]


def test_strict_and_lenient_handling(client):
    assert_outcome(client.get("/fhir/Patient?nonsense=1"), 400)
    r = client.get("/fhir/Patient?nonsense=1", headers={"prefer": "handling=lenient"})
    assert r.status_code == 200
    assert "nonsense" not in r.json()["link"][0]["url"]
    assert_outcome(client.get("/fhir/Patient?birthdate=notadate"), 400)
    assert_outcome(client.get("/fhir/Patient?_count=x"), 400)


def test_references_to_other_servers_never_reach_a_local_patient(client, repo):
    # This server's base is BASE; "Patient/p1" on another server is somebody else.
    repo.local_base = BASE
    client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    mine = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
            "subject": {"reference": f"{BASE}/Patient/p1"}}
    theirs = {**mine, "subject": {"reference": "https://other.example/fhir/Patient/p1"}}
    ids = {name: client.post("/fhir/Observation", json=body).json()["id"]
           for name, body in (("mine", mine), ("theirs", theirs))}

    def found(url: str) -> set[str]:
        resp = client.get(url)
        assert resp.status_code == 200, resp.text
        return {e["resource"]["id"] for e in resp.json().get("entry", [])
                if e["resource"]["resourceType"] == "Observation"}

    assert found("/fhir/Observation?patient=p1") == {ids["mine"]}
    assert found("/fhir/Patient/p1/Observation") == {ids["mine"]}
    assert found("/fhir/Patient/p1/$everything") == {ids["mine"]}
    assert found("/fhir/Observation?subject=https://other.example/fhir/Patient/p1") == {ids["theirs"]}


@pytest.mark.parametrize(
    ("count", "offset", "total"),
    [(2, 0, 5), (5, 0, 5), (10, 0, 5), (2, 4, 5), (2, 5, 5), (2, 9, 5), (0, 0, 5)],
)
def test_total_is_exact_whether_or_not_the_page_is_full(client, count, offset, total):
    # A short page gives the total without a COUNT query; full pages and pages past the end
    # still count. Every combination must report the same number.
    for i in range(total):
        client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": f"t{i}"}})
    resp = client.get(f"/fhir/Basic?_count={count}&_offset={offset}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["total"] == total

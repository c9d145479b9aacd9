"""Versions and changes seen through the repository source: a new release keeps the old
one, an update is picked up at once, a delete makes the system unknown."""

from __future__ import annotations

from typing import Any

import pytest
from term_server_helpers import DEMO, Client, demo_code_system, param

from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.store import Repository
from huitong.terminology.persist import save_terminology_resource
from huitong.terminology.repository_source import RepositoryTerminologySource


def _lookup(client: Client, code: str, **more: str) -> Any:
    return client.get("/fhir/CodeSystem/$lookup", params={"system": DEMO, "code": code, **more})


def test_new_version_keeps_the_old_one(client: Client, repo: Repository) -> None:
    v2 = demo_code_system("2")
    v2["concept"].append({"code": "CKD", "display": "Chronic kidney disease"})
    outcome = save_terminology_resource(repo, v2)
    assert outcome.created
    latest = _lookup(client, "CKD")
    assert latest.status_code == 200 and param(latest.json(), "version") == "2"
    assert _lookup(client, "CKD", version="1").status_code != 200
    assert param(_lookup(client, "DM", version="1").json(), "version") == "1"
    page = repo.search(parse_search("CodeSystem", [("url", DEMO)]))
    assert sorted(m.resource["version"] for m in page.matches) == ["1", "2"]


def test_reloading_the_same_version_updates_in_place(client: Client, repo: Repository,
                                                     stored: dict[str, str]) -> None:
    assert _lookup(client, "DM").json()["parameter"]  # compiled and cached
    changed = demo_code_system("1")
    changed["concept"][1]["display"] = "Diabetes (renamed)"
    outcome = save_terminology_resource(repo, changed)
    assert not outcome.created and outcome.stored.id == stored[DEMO]
    assert outcome.stored.version_id == 2
    assert param(_lookup(client, "DM").json(), "display") == "Diabetes (renamed)"


def test_deleted_code_system_is_unknown(client: Client, repo: Repository,
                                        stored: dict[str, str]) -> None:
    assert _lookup(client, "DM").status_code == 200
    with repo.transaction() as tx:
        tx.delete("CodeSystem", stored[DEMO])
    assert _lookup(client, "DM").status_code == 404
    assert client.get(f"/fhir/CodeSystem/{stored[DEMO]}/$lookup",
                      params={"code": "DM"}).status_code == 410


def test_source_reuses_parsed_resources_until_a_write(repo: Repository,
                                                      stored: dict[str, str]) -> None:
    source = RepositoryTerminologySource(repo)
    first = source.code_system(DEMO)
    assert first is not None and first["meta"]["versionId"] == "1"
    assert source.code_system(DEMO) is first  # unchanged: not fetched and parsed again
    save_terminology_resource(repo, demo_code_system("1"))  # the same content: no write
    assert source.code_system(DEMO) is first
    save_terminology_resource(repo, {**demo_code_system("1"), "title": "Demo, revised"})
    again = source.code_system(DEMO)
    assert again is not first and again is not None and again["meta"]["versionId"] == "2"
    assert source.code_system(f"{DEMO}|1") == again  # pinned: its own lookup, same content
    assert source.code_system(DEMO, "9") is None
    assert source.code_system_versions(DEMO) == ["1"]


def test_source_concept_maps_by_scope(repo: Repository, stored: dict[str, str]) -> None:
    source = RepositoryTerminologySource(repo)
    assert [cm["url"] for cm in source.concept_maps("http://example.org/vs/local-lab", None)
            ] == ["http://example.org/cm/lab-to-loinc"]
    assert source.concept_maps(None, "http://nowhere.example/vs") == []
    save_terminology_resource(repo, {
        "resourceType": "ConceptMap", "url": "http://example.org/cm/two", "status": "draft",
        "sourceCanonical": "http://example.org/vs/local-lab"})
    assert len(source.concept_maps("http://example.org/vs/local-lab", None)) == 2


def test_save_refuses_what_is_not_terminology(repo: Repository) -> None:
    with pytest.raises(FhirError) as err:
        save_terminology_resource(repo, {"resourceType": "Patient"})
    assert err.value.category is Category.INVALID
    with pytest.raises(FhirError):
        save_terminology_resource(repo, {"resourceType": "CodeSystem", "status": "active",
                                         "content": "complete"})


def test_unversioned_resources_are_replaced_by_url(repo: Repository) -> None:
    vs = {"resourceType": "ValueSet", "url": "http://example.org/vs/plain", "status": "draft"}
    first = save_terminology_resource(repo, vs)
    second = save_terminology_resource(repo, {**vs, "status": "active"})
    assert first.created and not second.created and first.stored.id == second.stored.id

"""The CapabilityStatement and the OpenAPI document are generated from the routing table."""

from __future__ import annotations

from server_helpers import BASE

import huitong
from huitong.fhir.definitions import resource_types
from huitong.fhir.search.params import supported_params
from huitong.server.operations import OPERATIONS
from huitong.server.routing import ROUTES


def test_capability_statement(client):
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert cs["kind"] == "instance"
    assert "json" in cs["format"]
    assert cs["software"] == {"name": "Huitong", "version": huitong.__version__}
    assert cs["implementation"]["url"] == BASE
    rest = cs["rest"][0]
    assert "authentication" in rest["security"]["description"]
    assert {i["code"] for i in rest["interaction"]} == {
        "transaction", "batch", "search-system", "history-system"}
    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(by_type) == set(resource_types())
    pat = by_type["Patient"]
    assert {i["code"] for i in pat["interaction"]} == {
        "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
        "create", "search-type"}
    assert pat["conditionalCreate"] is True
    assert pat["conditionalUpdate"] is True
    assert pat["conditionalDelete"] == "single"
    assert [p["name"] for p in pat["searchParam"]] == [d.code for d in supported_params("Patient")]
    assert {o["name"] for o in pat["operation"]} == {
        "everything", "validate", "meta", "meta-add", "meta-delete"}
    assert "everything" not in {o["name"] for o in by_type["Observation"]["operation"]}
    assert "Observation:subject" in pat["searchRevInclude"]
    assert {o["name"] for o in rest["operation"]} == {"meta", "import", "import-status"}


def test_every_advertised_interaction_is_routed():
    routed = {c for r in ROUTES for i in r.methods.values() for c in i.codes}
    assert {"read", "vread", "update", "patch", "delete", "history-instance", "history-type",
            "create", "search-type", "transaction", "batch", "search-system",
            "history-system"} <= routed


def test_openapi_document(client):
    doc = client.get("/fhir/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": BASE}]
    paths = doc["paths"]
    assert "/{type}/{id}" in paths
    assert set(paths["/{type}/{id}"]) == {"get", "put", "patch", "delete"}
    assert "/Patient/{id}/$everything" in paths
    assert set(paths["/{type}/{id}/$meta-add"]) == {"post"}
    for op in OPERATIONS:
        assert any(p.endswith(f"${op.name}") for p in paths)

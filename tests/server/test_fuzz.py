"""No input produces a 5xx, and every 4xx is an OperationOutcome (property-based)."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import FHIR_JSON


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # json, unlike orjson, writes integers of any size


SEGMENTS = st.sampled_from([
    "Patient", "Observation", "Bundle", "Foo", "patient", "p-1", "123", "_history", "_search",
    "$everything", "$validate", "$meta", "$meta-add", "$meta-delete", "$nope", "metadata",
    "*", "1", "..", "%", "Patient?x=1", "",
]) | st.text(min_size=1, max_size=12)
PARAM_NAMES = st.sampled_from([
    "_count", "_offset", "_sort", "_summary", "_elements", "_include", "_revinclude", "_total",
    "name", "birthdate", "identifier", "_id", "_format", "_pretty", "_since", "_at", "_type",
    "subject", "subject:Patient.name", "_has:Observation:patient:code", "code:text",
    "_lastUpdated", "value-quantity", "gender:missing", "mode",
]) | st.text(max_size=10)
PARAM_VALUES = st.sampled_from([
    "1", "0", "-1", "true", "count", "xml", "json", "ge2020", "2020-13-01", "a|b", "a,b",
    "Patient:subject", "*", "5.4|http://unitsofmeasure.org|mg", "", "\x00", "é",
]) | st.text(max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.sampled_from(["resourceType", "id", "entry", "request", "method",
                                       "url", "resource", "type", "reference", "meta", "op",
                                       "path", "value", "name", "parameter"])
                      | st.text(max_size=6), kids, max_size=5),
    max_leaves=20,
)
RESOURCE = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Patient", "Observation", "Bundle", "Parameters",
                                      "Binary", "Nope"])},
    optional={"id": st.text(max_size=8), "type": st.sampled_from(["batch", "transaction"]),
              "entry": st.lists(st.fixed_dictionaries({}, optional={
                  "fullUrl": st.text(max_size=10),
                  "resource": JSON,
                  "request": st.fixed_dictionaries({}, optional={
                      "method": st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "X"]),
                      "url": st.sampled_from(["Patient", "Patient/1", "Patient?name=x", "",
                                              "Observation/_history"]) | st.text(max_size=8),
                      "ifMatch": st.text(max_size=5), "ifNoneExist": st.text(max_size=8),
                  })}), max_size=3),
              "name": JSON, "gender": JSON, "subject": JSON, "parameter": JSON},
)
BODIES = (st.just(b"") | st.binary(max_size=40) | JSON.map(_dumps)
          | RESOURCE.map(_dumps))
CONTENT_TYPES = st.sampled_from([
    None, "application/fhir+json", "application/json", "application/json-patch+json",
    "application/x-www-form-urlencoded", "application/fhir+xml", "text/plain",
])
HEADERS = st.fixed_dictionaries({}, optional={
    "if-match": st.sampled_from(['W/"1"', "1", "x", 'W/"99999999999999999999"']),
    "if-none-exist": st.sampled_from(["identifier=a|b", "", "x", "_count=x"]),
    "if-none-match": st.sampled_from(['W/"1"', "*", "bad"]),
    "prefer": st.sampled_from(["return=minimal", "return=OperationOutcome",
                               "handling=lenient", "handling=strict, return=representation"]),
    "accept": st.sampled_from(["application/fhir+json", "application/xml", "*/*", "text/html"]),
})


# HUITONG_FUZZ_EXAMPLES=5000 for a longer hunt
@settings(max_examples=int(os.environ.get("HUITONG_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    segments=st.lists(SEGMENTS, max_size=5),
    params=st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=4),
    body=BODIES,
    content_type=CONTENT_TYPES,
    headers=HEADERS,
)
def test_no_input_breaks_the_server(client, method, segments, params, body, content_type,
                                    headers):
    path = "/fhir/" + "/".join(quote(s, safe="$*") for s in segments)
    hdrs = dict(headers)
    if content_type:
        hdrs["content-type"] = content_type
    r = client.request(method, path, params=params, content=body, headers=hdrs)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"] == FHIR_JSON
        if method != "HEAD":
            assert r.json()["resourceType"] == "OperationOutcome"
    elif r.content:
        orjson.loads(r.content)

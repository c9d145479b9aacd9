"""CSV and JSON feeds through the upload endpoint and the message store, on both engines."""

from __future__ import annotations

import orjson
import pytest
from feed_intake_helpers import (
    MAPPING_DIR,
    MRN,
    RESIDENT,
    Client,
    bp_row,
    csv_bytes,
    feed_app,
    put_channel,
    put_organization,
)

BP_MAPPING = {"file": str(MAPPING_DIR / "community_bp.toml")}

# A lab-result JSON feed whose records name their patient by resident ID only: the server
# resolves the conditional reference, and refuses (412) a record whose patient it does not know.
LAB_MAPPING = {
    "feed": {"name": "lab-json", "batch_size": 50},
    "resource": [{
        "key": "glu", "type": "Observation",
        "identifier": {"system": "urn:huitong:lab:C01", "value": "{id}"},
        "field": [
            {"element": "status", "value": "final"},
            {"element": "code.coding[0]",
             "value": {"system": "http://loinc.org", "code": "2345-7"}},
            {"element": "subject", "target_identifier": {
                "type": "Patient", "system": RESIDENT, "value": "{patient.idcard}"}},
            {"element": "effectiveDateTime", "source": "time", "required": True},
            {"element": "valueQuantity", "source": "value", "unit": "mmol/L",
             "required": True},
        ],
    }],
}


@pytest.fixture
def client(repo):
    c = Client(feed_app(repo))
    put_organization(c)
    yield c
    c.close()


def _upload(client: Client, cid: str, body: bytes, name: str = "export.csv"):
    return client.post(f"/api/ingest/channels/{cid}/file?name={name}", content=body,
                       headers={"content-type": "text/csv"})


def test_csv_bad_rows_are_reported_and_good_rows_kept_and_reimport_is_idempotent(client):
    put_channel(client, "bp-csv", format="csv", mapping=BP_MAPPING)
    rows = [bp_row(1), bp_row(2, date="2024-13-45 08:30"), bp_row(3, dbp=""), bp_row(4),
            bp_row(5, sbp="很高")]
    body = csv_bytes(rows)
    resp = _upload(client, "bp-csv", body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["result"] == "created"
    assert (out["records"], out["accepted"]) == (5, 2)
    errors = {(p["row"], p["field"], p["reason"]) for p in out["report"]
              if p["severity"] == "error"}
    assert errors == {(2, "随访时间", "bad-date"), (3, "舒张压", "missing-value"),
                      (5, "收缩压", "bad-number")}
    assert all(p["en"] and p["zh"] for p in out["report"])
    assert out["report"][0]["line"] >= 2
    # the good rows' patients and observations are stored, the bad rows' are not
    stored = {i["value"] for p in client.search(f"Patient?identifier={MRN}|M0001,{MRN}|M0002,"
                                                 f"{MRN}|M0003,{MRN}|M0004,{MRN}|M0005")
              for i in p["identifier"] if i["system"] == MRN}
    assert stored == {"M0001", "M0004"}
    bps = client.search("Observation?code=http://loinc.org|85354-9")
    assert sorted(o["identifier"][0]["value"] for o in bps) == ["F0001-bp", "F0004-bp"]
    # the message is processed with its report, and counted with a latency
    [message] = out["messages"]
    assert message["status"] == "processed" and message["warnings"] == len(out["report"])
    detail = client.get(f"/api/ingest/messages/{message['id']}").json()
    assert detail["controlId"] and len(detail["controlId"]) == 64
    assert {(w.get("row"), w.get("reason")) for w in detail["warnings"]} >= {
        (2, "bad-date"), (3, "missing-value")}
    assert len(detail["produced"]) == out["produced"] > 0
    stats = client.get("/api/ingest/stats?channel=bp-csv").json()["buckets"]
    assert stats[0]["processed"] == 1 and stats[0]["meanLatencyUs"] > 0

    # the same file again: the same message, nothing written
    versions = [o["meta"]["versionId"] for o in bps]
    again = _upload(client, "bp-csv", body)
    assert again.status_code == 200, again.text
    assert again.json()["result"] == "duplicate"
    assert again.json()["messages"][0]["id"] == message["id"]
    after = client.search("Observation?code=http://loinc.org|85354-9")
    assert [o["meta"]["versionId"] for o in after] == versions
    listed = client.get("/api/ingest/messages?channel=bp-csv").json()
    assert listed["total"] == 1


def test_gb18030_file(client):
    put_channel(client, "bp-gb", format="csv", mapping=BP_MAPPING)
    resp = _upload(client, "bp-gb", csv_bytes([bp_row(7), bp_row(8)], "gb18030"), "导出.csv")
    assert resp.status_code == 201, resp.text
    assert resp.json()["accepted"] == 2 and not [
        p for p in resp.json()["report"] if p["severity"] == "error"]
    [patient] = client.search(f"Patient?identifier={MRN}|M0007")
    assert patient["name"][0]["text"] == "患者7"
    assert patient["gender"] == "male"


def test_json_feed_isolates_records_the_server_refuses(client):
    put_channel(client, "lab-json", format="json", mapping=LAB_MAPPING)
    known = "110101196003050012"
    resp = client.post("/fhir/Patient", content=orjson.dumps({
        "resourceType": "Patient", "identifier": [{"system": RESIDENT, "value": known}]}),
        headers={"content-type": "application/fhir+json"})
    assert resp.status_code == 201, resp.text
    lines = []
    for i in range(1, 8):
        card = "110101199901019999" if i == 5 else known  # nobody has this resident ID
        lines.append(orjson.dumps({"id": f"L{i}", "patient": {"idcard": card},
                                   "time": f"2024-03-05 08:0{i}", "value": f"{4 + i}.1"}))
    lines.append(orjson.dumps({"id": "L8", "patient": {"idcard": known},
                               "time": "2024-03-05 09:00"}))
    resp = _upload(client, "lab-json", b"\n".join(lines), "lab.ndjson")
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert (out["records"], out["accepted"]) == (8, 6)
    refused = [p for p in out["report"] if p["reason"] == "refused"]
    assert [(p["row"], p["category"], p["status"]) for p in refused] == [
        (5, "precondition-failed", 412)]
    assert refused[0]["en"] and refused[0]["zh"]
    missing = [p for p in out["report"] if p["reason"] == "missing-value"]
    assert [(p["row"], p["pointer"]) for p in missing] == [(8, "/value")]
    stored = sorted(o["identifier"][0]["value"]
                    for o in client.search("Observation?code=http://loinc.org|2345-7"))
    assert stored == ["L1", "L2", "L3", "L4", "L6", "L7"]


def test_unusable_file_is_an_error_and_reprocessing_after_a_mapping_fix(client, repo):
    broken = {"feed": {"name": "x"}, "resource": [{
        "key": "p", "type": "Patient", "identifier": {"system": MRN, "value": "{病历号}"},
        "field": [{"element": "name[0].text", "source": "没有这一列", "required": True}]}]}
    put_channel(client, "bp-fix", format="csv", mapping=broken)
    resp = _upload(client, "bp-fix", csv_bytes([bp_row(9)]))
    assert resp.status_code == 422, resp.text
    [message] = resp.json()["messages"]
    assert message["status"] == "error"
    put_channel(client, "bp-fix", format="csv", mapping=BP_MAPPING)
    again = client.post(f"/api/ingest/messages/{message['id']}/reprocess")
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "processed"
    assert client.search(f"Patient?identifier={MRN}|M0009")


def test_wrong_channel_format_and_unknown_channel(client):
    put_channel(client, "dev", format="device")
    assert _upload(client, "dev", csv_bytes([bp_row(1)])).status_code == 400
    assert _upload(client, "nope", csv_bytes([bp_row(1)])).status_code == 404
    put_channel(client, "bp-off", format="csv", mapping=BP_MAPPING)
    client.post("/api/ingest/channels/bp-off/stop")
    assert _upload(client, "bp-off", csv_bytes([bp_row(1)])).status_code == 503

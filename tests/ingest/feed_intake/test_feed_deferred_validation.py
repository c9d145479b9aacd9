"""Feeds and device payloads are converted WITHOUT their own FHIR validation (the write path
validates every resource anyway); only a refused write has its records checked. These tests
pin that the reports stay exactly those of a validating conversion — the row, column and
reason of an invalid record, a device reading's error — and that a valid feed is not
validated twice. Both engines."""

from __future__ import annotations

import io
import tomllib
from typing import Any

import orjson
import pytest
from feed_intake_helpers import (
    KNOWN,
    MAPPING_DIR,
    MRN,
    ORG,
    RESIDENT,
    Client,
    bp_row,
    csv_bytes,
    known_resident_client,
    put_channel,
)

import huitong.fhir.validation as fhir_validation
from huitong.ingest.devices import DeviceContext, convert_device_payload
from huitong.ingest.feeds import convert_csv, convert_json, parse_mapping
from huitong.ingest.message_store import MessageStatus


@pytest.fixture
def client(repo):
    c = known_resident_client(repo)
    yield c
    c.close()


def _mapping(broken: bool) -> dict[str, Any]:
    """The shipped blood-pressure mapping; ``broken`` maps 男 to a code the FHIR validator
    refuses (a double space), so exactly the rows of men are invalid resources."""
    text = (MAPPING_DIR / "community_bp.toml").read_text(encoding="utf-8")
    if broken:
        text = text.replace('"男" = "male"', '"男" = "ma  le"')
        assert "ma  le" in text
    doc = tomllib.loads(text)
    doc["feed"]["organization"] = ORG
    return doc


def _woman(row: str) -> str:
    return row.replace(",男,", ",女,")


class CountingValidation:
    """Counts FHIR validations done by the feed and device converters (the write path's
    own validation is a different import and is not counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = fhir_validation.validate_resource

        def counted(resource: Any, **kw: Any) -> None:
            self.calls += 1
            real(resource, **kw)

        monkeypatch.setattr("huitong.ingest.feeds.records.validate_resource", counted)
        monkeypatch.setattr("huitong.ingest.devices.observations.validate_resource", counted)


def test_a_valid_feed_is_validated_once_by_the_write_not_by_the_conversion(
        client, monkeypatch):
    counting = CountingValidation(monkeypatch)
    put_channel(client, "bp-ok", format="csv", mapping=_mapping(broken=False))
    body = csv_bytes([bp_row(1), _woman(bp_row(2)), bp_row(3)])
    resp = client.post("/api/ingest/channels/bp-ok/file?name=a.csv", content=body,
                       headers={"content-type": "text/csv"})
    assert resp.status_code == 201, resp.text
    assert (resp.json()["accepted"], resp.json()["report"]) == (3, [])
    assert counting.calls == 0


def test_invalid_rows_get_the_report_of_a_validating_conversion(client, monkeypatch):
    doc = _mapping(broken=True)
    put_channel(client, "bp-bad", format="csv", mapping=doc)
    # men (rows 1, 4, 6) make an invalid Patient; row 3 has a bad date; 2 and 5 are good
    rows = [bp_row(1), _woman(bp_row(2)), _woman(bp_row(3, date="2024-13-45 08:30")),
            bp_row(4), _woman(bp_row(5)), bp_row(6)]
    body = csv_bytes(rows)
    [expected] = list(convert_csv(io.BytesIO(body), parse_mapping(doc)))  # validates
    assert {p.reason for p in expected.problems} == {"invalid-resource", "bad-date"}

    counting = CountingValidation(monkeypatch)
    resp = client.post("/api/ingest/channels/bp-bad/file?name=b.csv", content=body,
                       headers={"content-type": "text/csv"})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    # the same problems, in the same order, with row, line and column (FHIR element), and
    # no "refused" entry: the invalid rows were taken out before the write was split
    assert out["report"] == [p.as_dict() for p in expected.problems]
    assert [p["row"] for p in out["report"] if p["reason"] == "invalid-resource"] == [1, 4, 6]
    assert all(p.get("field") for p in out["report"])
    assert (out["records"], out["accepted"]) == (6, expected.accepted) == (6, 2)
    assert counting.calls > 0  # checked after the refusal, not before
    stored = {i["value"] for p in client.search(f"Patient?identifier={MRN}|M0001,{MRN}|M0002,"
                                                 f"{MRN}|M0004,{MRN}|M0005,{MRN}|M0006")
              for i in p["identifier"] if i["system"] == MRN}
    assert stored == {"M0002", "M0005"}
    # The refused attempt pointed the entries' references at ids it assigned (then rolled
    # back); the good rows were written again from records mapped anew, so every reading's
    # subject is a Patient that exists.
    bps = client.search("Observation?code=http://loinc.org|85354-9")
    assert len(bps) == 2
    for bp in bps:
        subject = bp["subject"]["reference"]
        resp = client.get(f"/fhir/{subject}", headers={"accept": "application/fhir+json"})
        assert resp.status_code == 200, subject
    [message] = out["messages"]
    assert message["status"] == "processed" and message["warnings"] == len(out["report"])


def _reading(minute: int, system: str | None = None) -> dict[str, Any]:
    device: dict[str, Any] = {"serial": "BPM-0001", "type": "blood-pressure-monitor"}
    if system is not None:
        device["system"] = system
    return {
        "device": device,
        "patient": {"system": RESIDENT, "value": KNOWN},
        "time": f"2024-03-05T08:{minute:02d}:00+08:00",
        "measurements": [{"type": "systolic", "value": 128, "unit": "mmHg"},
                         {"type": "diastolic", "value": 82, "unit": "mmHg"}],
    }


# A uri may not hold a space: the Device (and so the reading) is not valid FHIR.
BAD_SYSTEM = "urn:huitong:device serial"


def _expected(payload: bytes) -> list[dict[str, Any]]:
    conv = convert_device_payload(payload, DeviceContext(ORG))  # validates
    return [p.as_dict() for p in conv.problems]


def _panels(client: Client) -> list[str]:
    return sorted(p["effectiveDateTime"][11:16]
                  for p in client.search("Observation?code=http://loinc.org|85354-9"))


def test_an_invalid_reading_is_reported_and_the_others_written(client):
    put_channel(client, "home-bp", format="device")
    service = client.app.state.ingest
    mixed = orjson.dumps([_reading(1, BAD_SYSTEM), _reading(2)])
    expected = _expected(mixed)
    assert [(p["reason"], p["row"]) for p in expected] == [("invalid-resource", 1)]
    outcome = service.receive_device("home-bp", mixed)
    assert (outcome.result, outcome.report, outcome.accepted) == ("created", expected, 1)
    assert outcome.messages[0].status is MessageStatus.PROCESSED
    assert outcome.messages[0].warnings == expected
    assert _panels(client) == ["08:02"]

    only_bad = orjson.dumps(_reading(3, BAD_SYSTEM))
    outcome = service.receive_device("home-bp", only_bad)
    assert (outcome.result, outcome.report) == ("error", _expected(only_bad))
    assert outcome.messages[0].status is MessageStatus.ERROR
    assert _panels(client) == ["08:02"]


def test_a_group_with_an_invalid_reading_is_still_written_together(client):
    put_channel(client, "home-bp", format="device")
    service = client.app.state.ingest
    calls = [0]
    inner = service.feeds.submit

    def submit(bundle, before_commit):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return inner(bundle, before_commit)

    service.feeds.submit = submit
    mixed = orjson.dumps([_reading(2, BAD_SYSTEM), _reading(3)])
    only_bad = orjson.dumps(_reading(5, BAD_SYSTEM))
    payloads = [orjson.dumps(_reading(1)), mixed, orjson.dumps(_reading(4)), only_bad]
    outcomes = service.receive_devices("home-bp", payloads)
    assert [o.result for o in outcomes] == ["created", "created", "created", "error"]
    assert outcomes[1].report == _expected(mixed)
    assert outcomes[3].report == _expected(only_bad)
    assert [o.accepted for o in outcomes] == [1, 1, 1, 0]
    # refused once as a group, then the three usable payloads together again: not one
    # transaction per payload
    assert calls[0] <= 2
    assert _panels(client) == ["08:01", "08:03", "08:04"]
    assert [o.messages[0].status for o in outcomes] == [MessageStatus.PROCESSED] * 3 + [
        MessageStatus.ERROR]
    # The refused attempt pointed the entries' references at ids it assigned (then rolled
    # back): the second attempt is made from fresh conversions, so the readings point at the
    # Device that was stored.
    [device] = client.search("Device?identifier=BPM-0001")
    refs = {p["device"]["reference"]
            for p in client.search("Observation?code=http://loinc.org|85354-9")}
    assert refs == {f"Device/{device['id']}"}


def test_a_refused_group_is_written_again_from_its_payloads(client):
    """The group's write changes its entries in place (references to the ids it assigned);
    after the rollback the payloads are written from fresh conversions, so no reading points
    at a Device of the rolled-back attempt."""
    put_channel(client, "home-bp", format="device")
    service = client.app.state.ingest
    unknown = dict(_reading(2), patient={"system": RESIDENT, "value": "11010119990101999X"})
    payloads = [orjson.dumps(_reading(1)), orjson.dumps(unknown), orjson.dumps(_reading(3))]
    outcomes = service.receive_devices("home-bp", payloads)
    assert [o.result for o in outcomes] == ["created", "error", "created"]
    [device] = client.search("Device?identifier=BPM-0001")
    panels = client.search("Observation?code=http://loinc.org|85354-9")
    assert len(panels) == 2
    assert {p["device"]["reference"] for p in panels} == {f"Device/{device['id']}"}


def test_an_invalid_json_record_keeps_its_row_and_pointer(client):
    doc = {
        "feed": {"name": "lab-json", "batch_size": 50, "organization": ORG},
        "resource": [{
            "key": "glu", "type": "Observation",
            "identifier": {"system": "urn:huitong:lab:C01", "value": "{id}"},
            "field": [
                {"element": "status", "source": "status", "required": True},
                {"element": "code.coding[0]",
                 "value": {"system": "http://loinc.org", "code": "2345-7"}},
                {"element": "subject", "target_identifier": {
                    "type": "Patient", "system": RESIDENT, "value": "{idcard}"}},
                {"element": "effectiveDateTime", "source": "time", "required": True},
            ],
        }],
    }
    put_channel(client, "lab-json", format="json", mapping=doc)
    # a code may not hold two spaces in a row: record 2's Observation is invalid
    records = [{"id": f"L{i}", "idcard": KNOWN, "time": "2024-03-05 08:00",
                "status": "fi  nal" if i == 2 else "final"} for i in (1, 2, 3)]
    body = orjson.dumps(records)
    [expected] = list(convert_json(io.BytesIO(body), parse_mapping(doc)))  # validates
    assert [(p.reason, p.row) for p in expected.problems] == [("invalid-resource", 2)]
    assert expected.problems[0].pointer
    resp = client.post("/api/ingest/channels/lab-json/file?name=lab.json", content=body,
                       headers={"content-type": "application/json"})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["report"] == [p.as_dict() for p in expected.problems]
    assert out["accepted"] == 2
    stored = sorted(o["identifier"][0]["value"]
                    for o in client.search("Observation?code=http://loinc.org|2345-7"))
    assert stored == ["L1", "L3"]

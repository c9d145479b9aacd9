"""Device readings (REST and MQTT) and DICOM uploads through the feed intake."""

from __future__ import annotations

import asyncio
import io
import socket
import uuid

import orjson
import paho.mqtt.publish as publish
import pydicom
import pytest
from feed_intake_helpers import RESIDENT, Client, feed_app, put_channel, put_organization
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from huitong.ingest.mqtt_runtime import start_mqtt_channels

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY = "1.2.826.0.1.3680043.8.498.77"


@pytest.fixture
def client(repo):
    c = Client(feed_app(repo))
    put_organization(c)
    yield c
    c.close()


def reading(serial: str = "BPM-0001", time: str = "2024-03-05T08:30:00+08:00",
            idcard: str = "110101196003050012") -> bytes:
    return orjson.dumps({
        "device": {"serial": serial, "type": "blood-pressure-monitor"},
        "patient": {"system": RESIDENT, "value": idcard},
        "time": time,
        "measurements": [{"type": "systolic", "value": 128, "unit": "mmHg"},
                         {"type": "diastolic", "value": 82, "unit": "mmHg"}],
    })


def _patient(client: Client, idcard: str = "110101196003050012") -> None:
    resp = client.post("/fhir/Patient", content=orjson.dumps({
        "resourceType": "Patient", "identifier": [{"system": RESIDENT, "value": idcard}]}),
        headers={"content-type": "application/fhir+json"})
    assert resp.status_code == 201, resp.text


def test_device_reading_posted_twice_is_one_observation(client):
    put_channel(client, "home-bp", format="device")
    _patient(client)
    first = client.post("/api/ingest/channels/home-bp/device", content=reading())
    assert first.status_code == 201, first.text
    assert first.json()["messages"][0]["status"] == "processed"
    again = client.post("/api/ingest/channels/home-bp/device", content=reading())
    assert again.status_code == 200, again.text
    assert again.json()["result"] == "duplicate"
    assert again.json()["messages"][0]["id"] == first.json()["messages"][0]["id"]
    [panel] = client.search("Observation?code=http://loinc.org|85354-9")
    assert [c["valueQuantity"]["value"] for c in panel["component"]] == [128, 82]
    assert panel["performer"] == [{"reference": "Organization/c01"}]
    # unknown patient: stored in the error queue and answered 422 with the reason
    bad = client.post("/api/ingest/channels/home-bp/device",
                      content=reading(serial="BPM-0009", idcard="110101199901019999"))
    assert bad.status_code == 422, bad.text
    assert bad.json()["report"][-1]["category"] == "precondition-failed"
    assert bad.json()["messages"][0]["status"] == "error"
    unusable = client.post("/api/ingest/channels/home-bp/device", content=b'{"device": 1}')
    assert unusable.status_code == 422 and unusable.json()["report"]


def test_phd_bundle(client):
    put_channel(client, "phd", format="device")
    _patient(client)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-0000-0000-0000000000aa", "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": RESIDENT, "value": "110101196003050012"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "http://gw.example/fhir/Device/phd-1", "resource": {
            "resourceType": "Device", "id": "phd-1", "serialNumber": "SN-1",
            "identifier": [{"system": "urn:huitong:device-serial", "value": "SN-1"}]},
         "request": {"method": "PUT", "url": "Device/phd-1"}},
        {"fullUrl": "urn:uuid:00000000-0000-0000-0000-000000000002", "resource": {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "149546"}]},
            "subject": {"reference": "urn:uuid:00000000-0000-0000-0000-0000000000aa"},
            "device": {"reference": "Device/phd-1"},
            "effectiveDateTime": "2024-03-05T08:30:00+08:00",
            "valueQuantity": {"value": 64, "unit": "/min",
                              "system": "http://unitsofmeasure.org", "code": "/min"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    resp = client.post("/api/ingest/channels/phd/device", content=orjson.dumps(bundle))
    assert resp.status_code == 201, resp.text
    [hr] = client.search("Observation?code=http://loinc.org|8867-4")
    assert hr["valueQuantity"]["value"] == 64


def _broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _broker_up(), reason="Mosquitto is not running on 127.0.0.1:1883")
def test_mqtt_end_to_end(client):
    tag = uuid.uuid4().hex[:8]
    topic = f"huitong-test/{tag}/readings"
    put_channel(client, "home-mqtt", format="device", transport="mqtt", topic=topic,
                mapping={"client_id": f"huitong-test-{tag}"})
    _patient(client)
    service = client.app.state.ingest

    async def main() -> None:
        stop = asyncio.Event()
        run = start_mqtt_channels(service, stop)
        subscriber = run.subscribers["home-mqtt"]
        async with asyncio.timeout(20):  # a hang guard, not a performance assertion
            await subscriber.ready.wait()
            await asyncio.to_thread(publish.multiple, [
                {"topic": topic, "payload": reading(time=f"2024-03-05T08:3{i}:00+08:00"),
                 "qos": 1} for i in range(3)] + [
                {"topic": topic, "payload": reading(time="2024-03-05T08:30:00+08:00"),
                 "qos": 1}], hostname="127.0.0.1", port=1883)
            while subscriber.handled < 4:
                await asyncio.sleep(0.02)
        stop.set()
        await run.wait()

    asyncio.run(main())
    panels = client.search("Observation?code=http://loinc.org|85354-9")
    assert sorted(p["effectiveDateTime"] for p in panels) == [
        f"2024-03-05T08:3{i}:00+08:00" for i in range(3)]
    found = client.get("/api/ingest/messages?channel=home-mqtt").json()
    assert found["total"] == 3  # the resent reading is the same message
    assert {m["status"] for m in found["messages"]} == {"processed"}


def dicom_file(series: int, instance: int, *, pixels: bool = True) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE
    meta.MediaStorageSOPInstanceUID = f"{STUDY}.{series}.{instance}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = f"{STUDY}.{series}"
    ds.PatientID = "P0001"
    ds.AccessionNumber = "ACC-1"
    ds.StudyDate, ds.StudyTime = "20240305", "083015"
    ds.Modality = "CT"
    ds.SeriesNumber, ds.InstanceNumber = series, instance
    if pixels:
        ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 64, 64, 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = bytes(range(256)) * 32  # 8 KiB, CR LF bytes included
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_dicom_upload_single_and_multipart(client):
    put_channel(client, "pacs", format="dicom")
    # DICOM Patient IDs are the channel's MRNs (urn:huitong:org:<org id>:mrn by default)
    resp = client.post("/fhir/Patient", content=orjson.dumps({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:huitong:org:c01:mrn", "value": "P0001"}]}),
        headers={"content-type": "application/fhir+json"})
    assert resp.status_code == 201, resp.text
    one = dicom_file(1, 1)
    resp = client.post("/api/ingest/channels/pacs/dicom", content=one,
                       headers={"content-type": "application/dicom"})
    assert resp.status_code == 201, resp.text
    [message] = resp.json()["messages"]
    raw = client.get(f"/api/ingest/messages/{message['id']}").json()["rawBase64"]
    import base64

    stored = pydicom.dcmread(io.BytesIO(base64.b64decode(raw)), force=True)
    assert "PixelData" not in stored and stored.SOPInstanceUID == f"{STUDY}.1.1"
    assert len(base64.b64decode(raw)) < len(one) - 8000

    boundary = "huitong-boundary"
    parts = [dicom_file(1, 2), dicom_file(2, 1), b"not a dicom file"]
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\nContent-Disposition: "
        f'attachment; filename="f{i}.dcm"\r\n\r\n'.encode() + p + b"\r\n"
        for i, p in enumerate(parts)) + f"--{boundary}--\r\n".encode()
    resp = client.post("/api/ingest/channels/pacs/dicom", content=body, headers={
        "content-type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert [(p["reason"], p["source"]) for p in out["report"]] == [("not-dicom", "f2.dcm")]
    [study] = client.search("ImagingStudy?identifier=urn:dicom:uid|urn:oid:" + STUDY)
    assert study["numberOfSeries"] == 2 and study["numberOfInstances"] == 3
    assert study["subject"]["reference"].startswith("Patient/")
    # the same files again: duplicates, the study is not written again
    again = client.post("/api/ingest/channels/pacs/dicom", content=one,
                        headers={"content-type": "application/dicom"})
    assert again.status_code == 200 and again.json()["result"] == "duplicate"

"""VXU, ORM/OML, MDM, SIU, RDE and PPR: a representative sample each, values asserted."""

from __future__ import annotations

import base64

import pytest
from v2map_helpers import CTX, only, resources, sample

from huitong.ingest.hl7v2 import mapping
from huitong.ingest.hl7v2.mapping import map_message


def test_vxu_immunization() -> None:
    bundle = map_message(sample("IZ_1_1.1_Admin_Child_Max_Message.hl7"), CTX).bundle
    imm = only(bundle, "Immunization")
    assert imm["status"] == "completed"
    assert imm["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx"
    assert imm["occurrenceDateTime"].startswith("20")
    assert imm["lotNumber"]
    assert imm["primarySource"] is True
    for obs in resources(bundle, "Observation"):
        assert obs["partOf"][0]["reference"].startswith("urn:uuid:")


def test_vxu_several_administrations_are_distinct() -> None:
    bundle = map_message(sample("VXU.hl7"), CTX).bundle
    imms = resources(bundle, "Immunization")
    assert len(imms) == 3
    assert len({i["identifier"][0]["value"] for i in imms}) == 3


def test_orm_service_request() -> None:
    bundle = map_message(sample("LAB-ORM-1.hl7"), CTX).bundle
    request = only(bundle, "ServiceRequest")
    assert request["intent"] == "order"
    assert request["status"] == "active"
    assert request["code"]["coding"][0]["code"]
    entry = next(e for e in bundle["entry"] if e["resource"] is request)
    assert entry["request"]["method"] == "PUT"  # the order message owns the order


def test_oml_orders_with_specimens() -> None:
    bundle = map_message(sample("OML-O21-03.hl7"), CTX).bundle
    requests = resources(bundle, "ServiceRequest")
    assert len(requests) == 5
    assert any("specimen" in r for r in requests)
    assert any("supportingInfo" in r for r in requests)


def test_mdm_document_text_is_the_attachment() -> None:
    doc = only(map_message(sample("MDM-T02-03.hl7"), CTX).bundle, "DocumentReference")
    attachment = doc["content"][0]["attachment"]
    text = base64.b64decode(attachment["data"]).decode("utf-8")
    assert len(text.splitlines()) >= 20  # one line per OBX
    assert attachment["contentType"] == "text/plain; charset=utf-8"
    assert doc["masterIdentifier"]["value"]
    assert "relatesTo" not in doc


@pytest.mark.parametrize(("name", "relation"), [
    ("MDM-T02-01.hl7", None), ("MDM-T06-01.hl7", "appends"), ("MDM-T10-01.hl7", "replaces"),
])
def test_mdm_relations(name: str, relation: str | None) -> None:
    doc = only(map_message(sample(name), CTX).bundle, "DocumentReference")
    assert doc["masterIdentifier"]["value"] == "1.2.840.317.5947431.51.20080131160038"
    assert doc["docStatus"] == "final"  # TXA-17 AU
    if relation:
        assert doc["relatesTo"][0]["code"] == relation
    else:
        assert "relatesTo" not in doc


def test_mdm_notification_without_content_has_no_data() -> None:
    doc = only(map_message(sample("MDM-T01-01.hl7"), CTX).bundle, "DocumentReference")
    assert "data" not in doc["content"][0]["attachment"]


@pytest.mark.parametrize(("name", "status"), [
    ("SIU-S12-01.hl7", "booked"), ("SIU-S14-01.hl7", "booked"),
    ("SIU-S15-01.hl7", "cancelled"), ("SIU-S17-01.hl7", "entered-in-error"),
    ("SIU-S26-01.hl7", "noshow"),
])
def test_siu_appointment_status(name: str, status: str) -> None:
    appt = only(map_message(sample(name), CTX).bundle, "Appointment")
    assert appt["status"] == status
    assert appt["identifier"][0]["value"]
    actors = [p["actor"].get("reference", "") for p in appt["participant"]]
    assert any(a.startswith("urn:uuid:") for a in actors)


def test_rde_medication_requests() -> None:
    bundle = map_message(sample("RDE-O11-02.hl7"), CTX).bundle
    requests = resources(bundle, "MedicationRequest")
    assert len(requests) == 2
    for r in requests:
        assert r["intent"] == "order"
        assert r["medicationCodeableConcept"]
        assert {i["type"]["coding"][0]["code"] for i in r["identifier"]} <= {"PLAC", "FILL"}


@pytest.mark.parametrize(("name", "deleted"), [
    ("PC1-Problem-Add-v2.3.1.hl7", False), ("PC1-Problem-Delete-v2.3.1.hl7", True),
])
def test_ppr_condition(name: str, deleted: bool) -> None:
    condition = only(map_message(sample(name), CTX).bundle, "Condition")
    assert condition["category"][0]["coding"][0]["code"] == "problem-list-item"
    if deleted:
        assert condition["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
        assert "clinicalStatus" not in condition
    else:
        assert condition["clinicalStatus"]["coding"][0]["code"] in ("active", "resolved")


def test_public_surface() -> None:
    assert sorted(mapping.__all__) == sorted([
        "SUPPORTED_EVENTS", "MappingContext", "MappingError", "MappingResult",
        "MappingWarning", "MergeRequest", "UnsupportedMessage", "map_message"])
    for name in mapping.__all__:
        assert getattr(mapping, name) is not None


def test_a60_adverse_reaction() -> None:
    allergy = only(map_message(sample("ADT-A60-01.hl7"), CTX).bundle, "AllergyIntolerance")
    assert allergy["code"]["coding"][0]["code"] == "12345"
    assert allergy["category"] == ["food"]
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert allergy["identifier"][0]["value"] == "56789"
    assert allergy["reaction"][-1]["severity"] == "mild"  # from IAR-2


def test_ref_referral() -> None:
    bundle = map_message(sample("REF-I12-01.hl7"), CTX).bundle
    referral = only(bundle, "ServiceRequest")
    assert referral["identifier"][0]["value"] == "226839"
    assert referral["category"][0]["coding"][0]["code"] == "3457005"
    assert referral["code"]["coding"][0]["code"] == "22310-7"
    assert referral["requester"]["display"] == "ROBERT POWELL"
    assert referral["performer"][0]["display"] == "PAUL McWILLIAMS"
    condition = only(bundle, "Condition")
    condition_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"] is condition)
    assert referral["reasonReference"] == [{"reference": condition_url}]


def test_rds_dispense_points_at_its_order() -> None:
    bundle = map_message(sample("RDS-O13-01.hl7"), CTX).bundle
    dispense = only(bundle, "MedicationDispense")
    order_entry = next(e for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "MedicationRequest")
    assert order_entry["request"]["method"] == "POST"  # the RDE owns the order
    assert dispense["authorizingPrescription"] == [{"reference": order_entry["fullUrl"]}]
    assert dispense["quantity"]["value"] == 10
    assert dispense["whenHandedOver"] == "2020-12-12"


def test_zsegments_are_listed_and_unmapped_segments_warned() -> None:
    text = ("MSH|^~\\&|HIS|H1|HIE|R|20260101||ADT^A08|Z1|P|2.5\r"
            "PID|1||M1^^^H1^MR||Li^Na\r"
            "ZPI|1|custom\r"
            "GT1|1||Guarantor^G\r"
            "UB2|1\r"
            "ZPV|x\r")
    result = map_message(text, CTX)
    assert result.zsegments == ["ZPI", "ZPV"]
    warned = {(w.code, w.location) for w in result.warnings}
    assert ("segment-ignored", "UB2") in warned
    assert all(not loc.startswith("Z") for _, loc in warned)

"""Error texts that leave the message store (ACK ERR segments, stored errors, log lines)
name the element and the rule, never the offending value when it could be personal: a bad
resident ID number or phone number the FHIR validator quoted stays out of the ACK, the
stored error and every log record. On the real repository (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import logging

import orjson
import pytest

from huitong.fhir.errors import Category, FhirError, Issue
from huitong.fhir.validation import validate_resource
from huitong.ingest.channels import channel_from_config
from huitong.ingest.redact import REDACTED, redact_text, safe_error_text, safe_exception
from huitong.ingest.service import IngestService
from huitong.server.bundle import at_entry

RID = "11010119900307777X"
PHONE = "138-0013-8000"
NOW = 1_790_000_000_000_000


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("conditional reference Patient?identifier=urn:oid:2.16.156.10011.1.3|"
         f"{RID} matches no resource", "Patient?identifier=", RID),
        (f"birthDate: '{RID}' is not a valid date", "birthDate:", RID),
        (f"deceasedDateTime: '{PHONE}' is not a valid dateTime", "dateTime", PHONE),
        ("telecom value +86 138 0013 8000 refused", "telecom value", "0013"),
        ("mail li.wei@example.cn bounced", "mail", "li.wei"),
        ("born 1990-03-07T08:00:00+08:00 per PID-7", "PID-7", "1990-03-07"),
        ("name “张伟” not allowed", "name", "张伟"),
        ("Patient/123456 is not known", "Patient/123456", REDACTED),
        ("[patient.resident-id-valid] The resident ID number is not valid: check digit",
         "[patient.resident-id-valid]", REDACTED),
        ("OBX[3].5 is not a number (type NM)", "OBX[3].5", REDACTED),
    ],
)
def test_redact_text_drops_values_and_keeps_elements_and_rules(text, kept, gone):
    out = redact_text(text)
    assert kept in out
    assert gone not in out


def test_safe_error_text_names_the_element():
    err = FhirError(Category.INVALID, issues=[
        Issue(f"value '{RID}' is not valid", "Patient.identifier[0].value", code="value")])
    assert safe_error_text(err) == "Patient.identifier[0].value: value '…' is not valid"


def test_safe_exception_keeps_type_and_frames_not_message():
    try:
        {}[RID]
    except KeyError as exc:
        text = safe_exception(exc)
    assert text.startswith("KeyError at ") and RID not in text


def _validator_error() -> FhirError:
    """What the real validator says about a resident ID and a phone number mapped into date
    elements, re-expressed at the bundle entry as the transaction executor does."""
    with pytest.raises(FhirError) as caught:
        validate_resource({"resourceType": "Patient", "birthDate": RID,
                           "deceasedDateTime": PHONE})
    assert RID in caught.value.message  # the validator does quote the value
    return at_entry(caught.value, 0)


def _adt(control: str, msh15: str = "", msh16: str = "") -> bytes:
    return (
        f"MSH|^~\\&|HIS|COUNTY|HUITONG|REGION|20261122083000+0800||ADT^A04^ADT_A01|{control}|P|"
        f"2.5|||{msh15}|{msh16}\r"
        f"PID|1||{RID}^^^COUNTY^MR||张^伟||19700101|M|||||{PHONE}\r"
    ).encode()


@pytest.mark.parametrize(("msh15", "msh16", "codes"), [("", "", ["AR"]),
                                                       ("AL", "AL", ["CA", "AR"])])
def test_ack_stored_error_and_logs_do_not_carry_the_refused_values(repo, caplog, msh15, msh16,
                                                                   codes):
    ids = (f"id{i}" for i in itertools.count())
    clock = itertools.count(NOW, 1000).__next__

    def submit(bundle, before_commit):
        raise _validator_error()

    def submit_in(tx, bundle, before_commit):
        raise _validator_error()

    service = IngestService(repo, submit, clock, lambda: next(ids), submit_in=submit_in)
    service.put_channel(channel_from_config({
        "id": "county", "organization": "Organization/county", "transport": "mllp",
        "format": "hl7v2", "sending_facility": "COUNTY"}))
    caplog.set_level(logging.DEBUG)
    results = [service.receive_hl7v2(_adt("P1", msh15, msh16)),
               *service.receive_hl7v2_batch([_adt("P2", msh15, msh16), _adt("P3", msh15, msh16)])]
    for result in results:
        acks = b"".join(result.acks).decode()
        msa = [s.split("|")[1] for s in acks.split("\r") if s.startswith("MSA")]
        assert msa == codes
        err = [s for s in acks.split("\r") if s.startswith("ERR")]
        assert err and "Patient.birthDate" in err[0]  # the element and the rule are named
        assert RID not in acks and "0013" not in acks
        stored = service.store.get(result.message.id)
        errors = orjson.dumps(stored.errors).decode()
        assert "birthDate" in errors and RID not in errors and "0013" not in errors
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert RID not in text and PHONE not in text, text

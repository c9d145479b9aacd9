"""Messages about the same patient, order and visit converge on the same resources,
whatever order they arrive in and however often they are sent."""

from __future__ import annotations

from v2map_helpers import CTX, FhirClient

from huitong.ingest.hl7v2.mapping import map_message

_MSH = "MSH|^~\\&|{app}|H1|HIE|R|20260101120000+0800||{type}|{ctl}|P|2.5.1\r"
_PID = "PID|1||MRN77^^^H1^MR~110101199001011237^^^CHN^NNCHN||Sun^Li||19900101|F\r"
_PV1 = "|".join(["PV1", "1", "O", "CLINIC1^^^H1"] + [""] * 15 + ["V77^^^H1^VN"]) + "\r"
_ORDER = "ORC|{control}|PL77^HIS|{filler}||{status}\r" \
         "OBR|1|PL77^HIS|{filler}|2093-3^Cholesterol^LN|||20260101090000|||||||||||||||" \
         "{issued}||CH|{result}\r"


def _orm() -> str:
    return (_MSH.format(app="HIS", type="ORM^O01", ctl="O1") + _PID + _PV1
            + _ORDER.format(control="NW", filler="", status="", issued="", result=""))


def _oru(value: str, status: str) -> str:
    return (_MSH.format(app="LIS", type="ORU^R01", ctl=f"R-{value}") + _PID + _PV1
            + _ORDER.format(control="RE", filler="F77^LIS", status="CM",
                            issued="20260101110000", result=status)
            + f"OBX|1|NM|2093-3^Cholesterol^LN||{value}|mmol/L|3.1-5.7||||{status}\r")


def _adt(event: str) -> str:
    return _MSH.format(app="HIS", type=f"ADT^{event}", ctl=f"A-{event}") + _PID + _PV1


def _post(fhir: FhirClient, text: str) -> None:
    resp = fhir.post_bundle(map_message(text, CTX).bundle)
    assert resp.status_code == 200, resp.text


def _counts(fhir: FhirClient) -> dict[str, int]:
    return {t: fhir.count(t) for t in ("Patient", "Encounter", "ServiceRequest",
                                       "DiagnosticReport", "Observation")}


def test_order_result_correction_and_registration_converge(fhir: FhirClient) -> None:
    _post(fhir, _oru("5.2", "P"))  # the lab result arrives before registration
    _post(fhir, _orm())
    _post(fhir, _adt("A04"))
    _post(fhir, _oru("5.4", "C"))  # a corrected result
    _post(fhir, _oru("5.4", "C"))  # resent
    assert _counts(fhir) == {"Patient": 1, "Encounter": 1, "ServiceRequest": 1,
                             "DiagnosticReport": 1, "Observation": 1}
    obs = fhir.get("/fhir/Observation").json()["entry"][0]["resource"]
    assert obs["valueQuantity"]["value"] == 5.4
    assert obs["status"] == "corrected"
    report = fhir.get("/fhir/DiagnosticReport").json()["entry"][0]["resource"]
    assert report["status"] == "corrected"
    assert report["result"][0]["reference"] == f"Observation/{obs['id']}"
    patient = fhir.get("/fhir/Patient").json()["entry"][0]["resource"]
    assert report["subject"]["reference"] == f"Patient/{patient['id']}"
    encounter = fhir.get("/fhir/Encounter").json()["entry"][0]["resource"]
    assert encounter["status"] == "arrived"  # the ADT owns the visit


def test_discharge_updates_the_admitted_visit(fhir: FhirClient) -> None:
    _post(fhir, _adt("A01"))
    _post(fhir, _adt("A03"))
    _post(fhir, _adt("A03"))
    assert fhir.count("Encounter") == 1
    encounter = fhir.get("/fhir/Encounter").json()["entry"][0]["resource"]
    assert encounter["status"] == "finished"

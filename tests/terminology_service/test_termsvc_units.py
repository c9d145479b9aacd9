"""Quantities through the write path: stored in the preferred UCUM unit with the original kept
(and converting back gives the original), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from termsvc_helpers import make_app, write_patients

from huitong.store import Repository
from huitong.terminology.units.analytes import convert_analyte
from huitong.terminology.units.quantity import ORIGINAL_QUANTITY_URL

UCUM = "http://unitsofmeasure.org"


def _observation(loinc: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": "Patient/pa"},
        "effectiveDateTime": "2024-05-14T09:00:00+08:00",
        "issued": "2024-05-14T09:30:00+08:00",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "preferred", "expected"),
    [
        ("2339-0", 99.0, "mg/dL", "mmol/L", 5.50),  # glucose
        ("2339-0", 5.5, "mmol/L", "mmol/L", 5.5),  # already preferred: stored as sent
        ("2160-0", 1.1, "mg/dL", "umol/L", 97.2),  # creatinine
        ("2093-3", 200.0, "mg/dL", "mmol/L", 5.17),  # total cholesterol
        ("2571-8", 150.0, "mg/dL", "mmol/L", 1.69),  # triglycerides
        ("8310-5", 98.6, "[degF]", "Cel", 37.0),  # body temperature
        ("29463-7", 154.0, "[lb_av]", "kg", 69.9),  # body weight
    ],
)
def test_quantities_are_stored_in_the_preferred_unit(
    repo: Repository, loinc: str, value: float, unit: str, preferred: str, expected: float
) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"))
    r = client.post("/fhir/Observation", json=_observation(loinc, value, unit))
    assert r.status_code == 201, r.text
    stored = client.get(f"/fhir/Observation/{r.json()['id']}").json()
    vq = stored["valueQuantity"]
    assert (vq["system"], vq["code"], vq["unit"]) == (UCUM, preferred, preferred)
    assert vq["value"] == pytest.approx(expected, rel=5e-3)
    originals = [
        e["valueQuantity"] for e in vq.get("extension", []) if e["url"] == ORIGINAL_QUANTITY_URL
    ]
    if unit == preferred:
        assert originals == []
    else:
        assert originals == [{"value": value, "unit": unit, "system": UCUM, "code": unit}]
        # The round trip: the stored value converted back is the value sent.
        back = convert_analyte(vq["value"], preferred, unit, loinc)
        assert back == pytest.approx(value, rel=5e-3)
    # Searches use the stored (canonical) unit.
    hit = client.get(f"/fhir/Observation?value-quantity=ge{vq['value'] * 0.99}||{preferred}")
    assert hit.json()["total"] == 1


def test_glucose_both_ways_lands_on_the_same_value(repo: Repository) -> None:
    """mg/dL from one hospital and mmol/L from another are one value once stored."""
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"))
    a = client.post("/fhir/Observation", json=_observation("2339-0", 126.0, "mg/dL")).json()
    b = client.post("/fhir/Observation", json=_observation("2339-0", 6.99, "mmol/L")).json()
    assert a["valueQuantity"]["value"] == pytest.approx(b["valueQuantity"]["value"], rel=2e-3)
    assert a["valueQuantity"]["code"] == b["valueQuantity"]["code"] == "mmol/L"


def test_units_are_left_alone_when_translation_is_off(repo: Repository) -> None:
    client = make_app(repo, translate="off")
    write_patients(client, ("pa", "hosp-a"))
    r = client.post("/fhir/Observation", json=_observation("2339-0", 99.0, "mg/dL"))
    assert r.json()["valueQuantity"] == {
        "value": 99.0,
        "unit": "mg/dL",
        "system": UCUM,
        "code": "mg/dL",
    }

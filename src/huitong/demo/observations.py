"""FHIR renderings of measurements: vital signs, home blood-pressure readings and lab panels.

Vital signs follow the R4 vital-signs profile (https://hl7.org/fhir/R4/observation-vitalsigns.html):
category ``vital-signs``, the profile's LOINC codes and UCUM units. Lab results are grouped
per panel under a DiagnosticReport, each result pointing at the fasting Specimen it was
measured on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from huitong.demo._catalog import LAB_PANELS, LAB_TESTS, SPECIMEN_TYPES, LabTest
from huitong.demo._fhir import (
    BundleBuilder,
    coding,
    concept,
    date_time,
    quantity,
)
from huitong.demo.region import Clinician, Institution
from huitong.demo.systems import CS_LAB_PANEL, LOINC, V3_INTERPRETATION

__all__ = [
    "Measured",
    "add_blood_pressure",
    "add_body_measurements",
    "add_home_blood_pressure",
    "add_lab_panels",
]

_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_VITAL_SIGNS = concept(_OBSERVATION_CATEGORY, "vital-signs", "Vital Signs", "生命体征")
_LABORATORY = concept(_OBSERVATION_CATEGORY, "laboratory", "Laboratory", "检验")
_BP_PANEL = concept(LOINC, "85354-9", "Blood pressure panel with all children optional", "血压")
_SYSTOLIC = concept(LOINC, "8480-6", "Systolic blood pressure", "收缩压")
_DIASTOLIC = concept(LOINC, "8462-4", "Diastolic blood pressure", "舒张压")
_INTERPRETATION = {
    "H": concept(V3_INTERPRETATION, "H", "High", "偏高"),
    "L": concept(V3_INTERPRETATION, "L", "Low", "偏低"),
    "N": concept(V3_INTERPRETATION, "N", "Normal", "正常"),
}
# Thresholds for calling a reading high (China hypertension guideline 2018): 140/90 in
# the clinic, 135/85 for home self-measurement.
_CLINIC_LIMITS = (140, 90)
_HOME_LIMITS = (135, 85)


@dataclass(frozen=True)
class Measured:
    """Where and when something was measured during a visit."""

    key: str  # prefix for the resources' stable keys
    patient_url: str
    encounter_url: str
    institution: Institution
    moment: datetime


def _mmhg(value: int) -> dict[str, Any]:
    return quantity(value, "mmHg", "mm[Hg]")


def _bp_components(systolic: int, diastolic: int, limits: tuple[int, int]) -> list[dict[str, Any]]:
    return [
        {
            "code": code,
            "valueQuantity": _mmhg(value),
            "interpretation": [_INTERPRETATION["H" if value >= limit else "N"]],
        }
        for code, value, limit in (
            (_SYSTOLIC, systolic, limits[0]),
            (_DIASTOLIC, diastolic, limits[1]),
        )
    ]


def add_blood_pressure(
    builder: BundleBuilder, at: Measured, systolic: int, diastolic: int, performer: Clinician
) -> str:
    """Office blood pressure taken during an encounter."""
    return builder.add(
        f"{at.key}/bp",
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [_VITAL_SIGNS],
            "code": _BP_PANEL,
            "subject": {"reference": at.patient_url},
            "encounter": {"reference": at.encounter_url},
            "effectiveDateTime": date_time(at.moment),
            "performer": [performer.ref],
            "component": _bp_components(systolic, diastolic, _CLINIC_LIMITS),
        },
    )


def add_home_blood_pressure(
    builder: BundleBuilder,
    key: str,
    patient_url: str,
    device_url: str,
    moment: datetime,
    systolic: int,
    diastolic: int,
) -> str:
    """A self-measured reading uploaded by a home monitor: no encounter, the patient performs."""
    return builder.add(
        key,
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [_VITAL_SIGNS],
            "code": _BP_PANEL,
            "subject": {"reference": patient_url},
            "effectiveDateTime": date_time(moment),
            "performer": [{"reference": patient_url}],
            "note": [{"text": "家庭血压计自测，设备自动上传"}],
            "method": {"text": "家庭血压计"},
            "device": {"reference": device_url},
            "component": _bp_components(systolic, diastolic, _HOME_LIMITS),
        },
    )


def add_body_measurements(
    builder: BundleBuilder,
    at: Measured,
    height_cm: float,
    weight_kg: float,
    performer: Clinician,
) -> None:
    """Height, weight and the BMI derived from them."""

    def vital(name: str, code: dict[str, Any], value: dict[str, Any], **extra: Any) -> str:
        return builder.add(
            f"{at.key}/{name}",
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [_VITAL_SIGNS],
                "code": code,
                "subject": {"reference": at.patient_url},
                "encounter": {"reference": at.encounter_url},
                "effectiveDateTime": date_time(at.moment),
                "performer": [performer.ref],
                "valueQuantity": value,
                **extra,
            },
        )

    height_url = vital(
        "height", concept(LOINC, "8302-2", "Body height", "身高"), quantity(height_cm, "cm")
    )
    weight_url = vital(
        "weight", concept(LOINC, "29463-7", "Body weight", "体重"), quantity(weight_kg, "kg")
    )
    bmi = round(weight_kg / (height_cm / 100) ** 2, 1)
    vital(
        "bmi",
        concept(LOINC, "39156-5", "Body mass index (BMI) [Ratio]", "体重指数"),
        quantity(bmi, "kg/m2"),
        derivedFrom=[{"reference": height_url}, {"reference": weight_url}],
    )


def _reference_range(test: LabTest, sex: str) -> dict[str, Any]:
    low, high = test.interval(sex)
    out: dict[str, Any] = {}
    if low is not None:
        out["low"] = quantity(low, test.unit, test.ucum)
    if high is not None:
        out["high"] = quantity(high, test.unit, test.ucum)
    return out


def _interpret(value: float, test: LabTest, sex: str) -> str:
    low, high = test.interval(sex)
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return "N"


def add_lab_panels(
    builder: BundleBuilder,
    at: Measured,
    panels: Sequence[str],
    value_of: Callable[[str], float],
    sex: str,
    technician: Clinician,
) -> None:
    """One fasting Specimen per specimen type, then per panel its results and DiagnosticReport.

    ``value_of(test_key)`` returns the unrounded value of a test; rounding to the
    laboratory's reporting precision happens here.
    """
    specimen_urls: dict[str, str] = {}
    issued = date_time(at.moment + timedelta(hours=3))
    for panel_key in panels:
        panel = LAB_PANELS[panel_key]
        if panel.specimen not in specimen_urls:
            display, text = SPECIMEN_TYPES[panel.specimen]
            specimen_urls[panel.specimen] = builder.add(
                f"{at.key}/specimen/{panel.specimen}",
                {
                    "resourceType": "Specimen",
                    "status": "available",
                    "type": concept("http://terminology.hl7.org/CodeSystem/v2-0487",
                                    panel.specimen, display, text),
                    "subject": {"reference": at.patient_url},
                    "receivedTime": date_time(at.moment + timedelta(minutes=20)),
                    "collection": {
                        "collectedDateTime": date_time(at.moment),
                        "fastingStatusCodeableConcept": concept(
                            "http://terminology.hl7.org/CodeSystem/v2-0916", "F",
                            "Patient was fasting prior to the procedure.", "空腹"),
                    },
                },
            )  # fmt: skip
        specimen_url = specimen_urls[panel.specimen]
        results = []
        for test_key in panel.tests:
            test = LAB_TESTS[test_key]
            value = round(value_of(test_key), test.decimals)
            if test.decimals == 0:
                value = int(value)
            results.append(
                builder.add(
                    f"{at.key}/lab/{test_key}",
                    {
                        "resourceType": "Observation",
                        "status": "final",
                        "category": [_LABORATORY],
                        "code": concept(LOINC, test.loinc, test.display, test.name_zh),
                        "subject": {"reference": at.patient_url},
                        "encounter": {"reference": at.encounter_url},
                        "effectiveDateTime": date_time(at.moment),
                        "issued": issued,
                        "performer": [at.institution.ref],
                        "valueQuantity": quantity(value, test.unit, test.ucum),
                        "interpretation": [_INTERPRETATION[_interpret(value, test, sex)]],
                        "specimen": {"reference": specimen_url},
                        "referenceRange": [_reference_range(test, sex)],
                    },
                )
            )
        codings = [coding(CS_LAB_PANEL, panel.key, panel.name_zh)]
        if panel.loinc and panel.loinc_display:
            codings.append(coding(LOINC, panel.loinc, panel.loinc_display))
        builder.add(
            f"{at.key}/report/{panel.key}",
            {
                "resourceType": "DiagnosticReport",
                "status": "final",
                "category": [
                    concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory",
                            "检验")
                ],
                "code": {"coding": codings, "text": panel.name_zh},
                "subject": {"reference": at.patient_url},
                "encounter": {"reference": at.encounter_url},
                "effectiveDateTime": date_time(at.moment),
                "issued": issued,
                "performer": [at.institution.ref],
                "resultsInterpreter": [technician.ref],
                "specimen": [{"reference": specimen_url}],
                "result": [{"reference": url} for url in results],
            },
        )  # fmt: skip

"""The demo region generator: determinism, shape of the region, realism and FHIR validity."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

import orjson
import pytest

import huitong.demo
from huitong.demo import REFERENCE_DATE, generate_region
from huitong.demo._fhir import NAMESPACE, stable_id
from huitong.demo._names import COMPOUND_SURNAMES
from huitong.demo.systems import (
    CS_ORGANIZATION_KIND,
    ICD10,
    ID_ORG_CODE,
    ID_RESIDENT,
    LOINC,
    UCUM,
    mrn_system,
)
from huitong.mpi.resident_id import birth_date_of, is_valid, sex_of, upgrade_15_to_18

Resource = dict[str, Any]


@cache
def _default() -> list[Resource]:
    return generate_region()


@pytest.fixture
def bundles() -> list[Resource]:
    return _default()


def resources(bundle: Resource, resource_type: str | None = None) -> list[Resource]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if resource_type is None or e["resource"]["resourceType"] == resource_type
    ]


def patient_of(bundle: Resource) -> Resource:
    (patient,) = resources(bundle, "Patient")
    return patient


def codes(concept: dict[str, Any], system: str) -> set[str]:
    return {c["code"] for c in concept.get("coding", []) if c.get("system") == system}


# --- determinism and shape --------------------------------------------------------------------


def test_same_seed_gives_byte_identical_output() -> None:
    first = orjson.dumps(generate_region(seed=7, residents=25))
    assert orjson.dumps(generate_region(seed=7, residents=25)) == first
    assert orjson.dumps(generate_region(seed=8, residents=25)) != first


def test_default_seed_is_reproducible(bundles: list[Resource]) -> None:
    assert orjson.dumps(generate_region()) == orjson.dumps(bundles)


def test_ids_are_uuid5_of_seed_and_key() -> None:
    for seed, key in ((1, "resident/0"), (20261122, "org/ljh1"), (5, "患者/visit/3")):
        assert stable_id(seed, key) == str(uuid.uuid5(NAMESPACE, f"{seed}/{key}"))


def test_one_region_bundle_then_one_bundle_per_resident(bundles: list[Resource]) -> None:
    assert len(bundles) == 1 + 300
    assert not resources(bundles[0], "Patient")
    assert all(len(resources(b, "Patient")) == 1 for b in bundles[1:])
    assert len(generate_region(residents=0)) == 1
    with pytest.raises(ValueError):
        generate_region(residents=-1)


def test_region_has_hospitals_and_community_health_centres(bundles: list[Resource]) -> None:
    kinds = Counter(
        code
        for org in resources(bundles[0], "Organization")
        for concept in org["type"]
        for code in codes(concept, CS_ORGANIZATION_KIND)
    )
    assert kinds["hospital"] >= 3
    assert kinds["chc"] >= 5
    names = {org["name"] for org in resources(bundles[0], "Organization")}
    assert {"临江市第一人民医院", "临江市中医医院", "临江市妇幼保健院"} <= names
    assert sum(name.endswith("社区卫生服务中心") for name in names) >= 5
    for org in resources(bundles[0], "Organization"):
        assert org["alias"] and org["alias"][0].isascii()
        assert org["address"][0]["city"] == "临江市"
    roles = resources(bundles[0], "PractitionerRole")
    assert len(roles) == len(resources(bundles[0], "Practitioner")) >= 20


def test_entries_are_idempotent_puts_with_unique_ids(bundles: list[Resource]) -> None:
    seen: set[str] = set()
    for bundle in bundles:
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            resource = entry["resource"]
            url = f"{resource['resourceType']}/{resource['id']}"
            assert entry["request"] == {"method": "PUT", "url": url}
            assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
            assert url not in seen
            seen.add(url)


# --- residents -----------------------------------------------------------------------------


def test_every_resident_id_is_valid_and_matches_birth_date_and_sex(bundles: list[Resource]) -> None:
    for bundle in bundles[1:]:
        patient = patient_of(bundle)
        official = [
            i
            for i in patient["identifier"]
            if i["system"] == ID_RESIDENT and i["use"] == "official"
        ]
        assert len(official) == 1
        number = official[0]["value"]
        assert is_valid(number), number
        assert number.startswith("39")  # the fictional province's area codes
        assert birth_date_of(number).isoformat() == patient["birthDate"]
        assert sex_of(number) == patient["gender"]
        assert date(1935, 1, 1) <= birth_date_of(number) <= date(2020, 12, 31)


def test_resident_ids_are_unique(bundles: list[Resource]) -> None:
    numbers = [
        i["value"]
        for b in bundles[1:]
        for i in patient_of(b)["identifier"]
        if i["system"] == ID_RESIDENT and i["use"] == "official"
    ]
    assert len(set(numbers)) == len(numbers)


def test_some_residents_carry_an_expired_15_digit_number_that_upgrades(
    bundles: list[Resource],
) -> None:
    old_ids = 0
    for bundle in bundles[1:]:
        ids = [i for i in patient_of(bundle)["identifier"] if i["system"] == ID_RESIDENT]
        official = next(i["value"] for i in ids if i["use"] == "official")
        for old in (i for i in ids if i["use"] == "old"):
            old_ids += 1
            assert len(old["value"]) == 15
            assert old["period"]["end"] <= "2013-01-01"
            assert upgrade_15_to_18(old["value"]) == official
    assert 5 <= old_ids <= 60


def test_names_split_into_family_and_given(bundles: list[Resource]) -> None:
    families: Counter[str] = Counter()
    for bundle in bundles[1:]:
        (name,) = patient_of(bundle)["name"]
        assert name["text"] == name["family"] + "".join(name["given"])
        assert 1 <= len(name["family"]) <= 2
        assert all(1 <= len(g) <= 2 for g in name["given"])
        families[name["family"]] += 1
    assert any(f in COMPOUND_SURNAMES for f in families)
    assert len(families) > 50


def test_patients_have_phone_address_insurance_and_a_managing_centre(
    bundles: list[Resource],
) -> None:
    chc_ids = {
        f"Organization/{org['id']}"
        for org in resources(bundles[0], "Organization")
        if any("chc" in codes(t, CS_ORGANIZATION_KIND) for t in org["type"])
    }
    for bundle in bundles[1:]:
        patient = patient_of(bundle)
        assert patient["managingOrganization"]["reference"] in chc_ids
        address = patient["address"][0]
        assert address["state"] == "安江省" and address["city"] == "临江市"
        assert re.fullmatch(r"\d{6}", address["postalCode"])
        assert any(i["system"] == "urn:huitong:medical-insurance" for i in patient["identifier"])
        phones = [t["value"] for t in patient.get("telecom", [])] + [
            t["value"] for c in patient.get("contact", []) for t in c["telecom"]
        ]
        assert phones, "a resident or their contact must be reachable"
        assert all(re.fullmatch(r"\+86 1\d{10}", p) for p in phones)
        for telecom in patient.get("telecom", []):
            assert telecom["system"] == "phone" and telecom["use"] == "mobile"


def test_patients_have_an_mrn_at_every_institution_they_visited(bundles: list[Resource]) -> None:
    org_code = {
        f"Organization/{org['id']}": next(
            i["value"] for i in org["identifier"] if i["system"] == ID_ORG_CODE
        )
        for org in resources(bundles[0], "Organization")
    }
    for bundle in bundles[1:]:
        systems = {i["system"] for i in patient_of(bundle)["identifier"]}
        for encounter in resources(bundle, "Encounter"):
            code = org_code[encounter["serviceProvider"]["reference"]]
            assert mrn_system(code) in systems


# --- clinical content ----------------------------------------------------------------------


def test_most_residents_were_seen_at_two_or_more_institutions(bundles: list[Resource]) -> None:
    spread = [
        len({e["serviceProvider"]["reference"] for e in resources(b, "Encounter")})
        for b in bundles[1:]
    ]
    assert sum(n >= 2 for n in spread) / len(spread) >= 0.8
    assert all(n >= 1 for n in spread)


def _share_with(bundles: list[Resource], icd10: str) -> float:
    having = sum(
        any(icd10 in codes(c["code"], ICD10) for c in resources(b, "Condition"))
        for b in bundles[1:]
    )
    return having / (len(bundles) - 1)


@pytest.mark.parametrize("seed", [20261122, 1, 99])
def test_chronic_disease_prevalence(seed: int) -> None:
    bundles = _default() if seed == 20261122 else generate_region(seed=seed, residents=200)
    assert 0.25 <= _share_with(bundles, "I10") <= 0.30
    assert 0.10 <= _share_with(bundles, "E11.9") <= 0.12


def test_conditions_use_r4_status_code_systems(bundles: list[Resource]) -> None:
    conditions = [c for b in bundles[1:] for c in resources(b, "Condition")]
    assert conditions
    for condition in conditions:
        clinical = condition["clinicalStatus"]["coding"][0]
        verification = condition["verificationStatus"]["coding"][0]
        assert clinical["system"] == "http://terminology.hl7.org/CodeSystem/condition-clinical"
        assert (
            verification["system"] == "http://terminology.hl7.org/CodeSystem/condition-ver-status"
        )
        assert condition["onsetDateTime"]
        coding = condition["code"]["coding"][0]
        assert (coding["code"], coding["display"]) in {
            ("I10", "原发性高血压"),
            ("E11.9", "2型糖尿病"),
        }


def _bp(observation: Resource) -> tuple[float, float]:
    by_code = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in observation["component"]}
    for quantity in by_code.values():
        assert quantity["system"] == UCUM and quantity["code"] == "mm[Hg]"
    return by_code["8480-6"]["value"], by_code["8462-4"]["value"]


def _is_bp(observation: Resource) -> bool:
    return "85354-9" in codes(observation["code"], LOINC)


def test_blood_pressure_panels_have_both_components_in_mm_hg(bundles: list[Resource]) -> None:
    panels = [o for b in bundles[1:] for o in resources(b, "Observation") if _is_bp(o)]
    assert len(panels) > 1000
    for panel in panels:
        systolic, diastolic = _bp(panel)
        assert 50 <= diastolic < systolic <= 200
        assert codes(
            panel["category"][0], "http://terminology.hl7.org/CodeSystem/observation-category"
        ) == {"vital-signs"}


def test_hypertensives_are_high_and_come_down_with_treatment(bundles: list[Resource]) -> None:
    improved = total = 0
    for bundle in bundles[1:]:
        if not any("I10" in codes(c["code"], ICD10) for c in resources(bundle, "Condition")):
            continue
        office = sorted(
            (o["effectiveDateTime"], _bp(o)[0])
            for o in resources(bundle, "Observation")
            if _is_bp(o) and "encounter" in o
        )
        if len(office) < 6:
            continue
        total += 1
        first, last = office[: len(office) // 3], office[-len(office) // 3 :]
        if sum(s for _, s in last) / len(last) < sum(s for _, s in first) / len(first):
            improved += 1
    assert total > 40
    assert improved / total >= 0.8


def test_some_hypertensives_send_home_readings_from_a_device(bundles: list[Resource]) -> None:
    with_home = 0
    for bundle in bundles[1:]:
        devices = {f"urn:uuid:{d['id']}": d for d in resources(bundle, "Device")}
        home = [o for o in resources(bundle, "Observation") if "device" in o]
        if not home:
            continue
        with_home += 1
        for observation in home:
            device = devices[observation["device"]["reference"]]
            assert device["manufacturer"] and device["modelNumber"]
            assert observation["method"]["text"] == "家庭血压计"
            assert "encounter" not in observation
            _bp(observation)
    assert with_home >= 10


def test_diabetics_fasting_glucose_is_in_range(bundles: list[Resource]) -> None:
    values = []
    for bundle in bundles[1:]:
        conditions = resources(bundle, "Condition")
        diabetes = [c for c in conditions if "E11.9" in codes(c["code"], ICD10)]
        if not diabetes:
            continue
        onset = diabetes[0]["onsetDateTime"][:10]
        values += [
            o["valueQuantity"]["value"]
            for o in resources(bundle, "Observation")
            if "15074-8" in codes(o["code"], LOINC) and o["effectiveDateTime"][:10] >= onset
        ]
    assert len(values) > 100
    assert all(6.5 <= v <= 12.0 for v in values)


def test_lab_results_have_reference_range_and_interpretation_under_a_report(
    bundles: list[Resource],
) -> None:
    labs = 0
    for bundle in bundles[1:]:
        in_report = {
            r["reference"] for d in resources(bundle, "DiagnosticReport") for r in d["result"]
        }
        for observation in resources(bundle, "Observation"):
            category = observation["category"][0]["coding"][0]["code"]
            if category != "laboratory":
                continue
            labs += 1
            assert f"urn:uuid:{observation['id']}" in in_report
            assert observation["referenceRange"]
            (interpretation,) = observation["interpretation"]
            coding = interpretation["coding"][0]
            assert coding["system"] == (
                "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
            )
            value = observation["valueQuantity"]["value"]
            low = observation["referenceRange"][0].get("low", {}).get("value", float("-inf"))
            high = observation["referenceRange"][0].get("high", {}).get("value", float("inf"))
            expected = "H" if value > high else "L" if value < low else "N"
            assert coding["code"] == expected
    assert labs > 2000


def test_medications_use_atc_and_some_reference_formulary_medications(
    bundles: list[Resource],
) -> None:
    formulary = {f"Medication/{m['id']}" for m in resources(bundles[0], "Medication")}
    by_reference = inline = 0
    atc_codes: set[str] = set()
    for bundle in bundles[1:]:
        for request in resources(bundle, "MedicationRequest"):
            assert request["dosageInstruction"][0]["text"]
            if "medicationReference" in request:
                by_reference += 1
                assert request["medicationReference"]["reference"] in formulary
            else:
                inline += 1
                atc_codes |= codes(request["medicationCodeableConcept"], "http://www.whocc.no/atc")
    assert by_reference >= 10
    assert {"C08CA01", "A10BA02"} <= atc_codes


def test_about_a_tenth_have_an_allergy(bundles: list[Resource]) -> None:
    allergic = sum(bool(resources(b, "AllergyIntolerance")) for b in bundles[1:])
    assert 0.08 <= allergic / 300 <= 0.12


def _dates(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _dates(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _dates(item, path)
    elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", value):
        yield path, value


def test_clinical_times_are_china_time_and_in_the_five_year_window(
    bundles: list[Resource],
) -> None:
    earliest = datetime.combine(REFERENCE_DATE - timedelta(days=5 * 365 + 1), datetime.min.time())
    latest = datetime.combine(REFERENCE_DATE, datetime.min.time())
    for bundle in bundles[1:]:
        for resource in resources(bundle):
            for path, text in _dates(resource):
                assert text.endswith("+08:00"), (path, text)
                moment = datetime.fromisoformat(text).replace(tzinfo=None)
                if path != ".onsetDateTime":
                    assert earliest <= moment < latest, (path, text)


# --- references and validity -------------------------------------------------------------------


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def test_every_reference_resolves(bundles: list[Resource]) -> None:
    region = {e["request"]["url"] for e in bundles[0]["entry"]}
    region_urls = {e["fullUrl"] for e in bundles[0]["entry"]}
    for bundle in bundles:
        local = {e["fullUrl"] for e in bundle["entry"]}
        for entry in bundle["entry"]:
            for ref in _references(entry["resource"]):
                if ref.startswith("urn:uuid:"):
                    assert ref in local, ref
                else:
                    assert ref in region, ref
                    # A urn:uuid in the region bundle is only meaningful inside it.
                    assert ref not in region_urls


def _empty_values(value: Any, path: str) -> Iterator[str]:
    if value is None or value == "" or value == [] or value == {}:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _empty_values(item, f"{path}[]")
    elif isinstance(value, str) and value != value.strip():
        yield path


def test_every_resource_has_a_type_and_no_empty_values(bundles: list[Resource]) -> None:
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert resource["resourceType"]
            assert not list(_empty_values(resource, resource["resourceType"]))


def test_observations_are_final(bundles: list[Resource]) -> None:
    assert all(o["status"] == "final" for b in bundles[1:] for o in resources(b, "Observation"))


def test_every_bundle_passes_the_project_validator(bundles: list[Resource]) -> None:
    validation = pytest.importorskip("huitong.fhir.validation")
    validate_resource = getattr(validation, "validate_resource", None)
    if validate_resource is None:
        pytest.skip("huitong.fhir.validation has no validate_resource yet")
    from huitong.fhir.errors import FhirError

    failures = []
    # A Bundle is a resource: validating it validates every entry's resource too.
    for bundle in [*bundles, *generate_region(seed=3, residents=40)]:
        try:
            validate_resource(bundle)
        except FhirError as error:
            failures.append(error)
    assert not failures, failures[:3]


def test_public_surface_is_what_all_says() -> None:
    assert sorted(huitong.demo.__all__) == [
        "DEFAULT_RESIDENTS",
        "DEFAULT_SEED",
        "REFERENCE_DATE",
        "generate_region",
    ]
    for name in huitong.demo.__all__:
        assert hasattr(huitong.demo, name)

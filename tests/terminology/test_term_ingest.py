"""Translation on ingest: standard codings added beside originals, quantities normalised."""

from __future__ import annotations

import copy
import json

from term_data import LOCAL_LAB, concept_maps

from huitong.terminology import MapSet, translate_resource
from huitong.terminology.units import ORIGINAL_QUANTITY_URL

LOINC = "http://loinc.org"


def observation():
    return {
        "resourceType": "Observation", "id": "o1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                  "observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOCAL_LAB, "code": "LAB-GLU", "display": "血糖"}],
                 "text": "血糖"},
        "valueQuantity": {"value": 126, "unit": "mg/dL"},
        "referenceRange": [{"low": {"value": 70, "unit": "mg/dL"},
                            "high": {"value": 99, "unit": "mg/dL"}}],
        "interpretation": [{"coding": [{"system": "http://hospital-a.example/flags",
                                        "code": "H"}]}],
    }


def test_adds_standard_coding_after_original_and_normalises():
    original = observation()
    before = copy.deepcopy(original)
    result = translate_resource(original, concept_maps())
    assert original == before  # never modified in place
    coding = result.resource["code"]["coding"]
    assert coding[0] == before["code"]["coding"][0]
    assert coding[1] == {"system": LOINC, "code": "2345-7",
                         "display": "Glucose [Mass/volume] in Serum or Plasma",
                         "userSelected": False}
    assert [a.path for a in result.added] == ["Observation.code.coding[0]"]
    vq = result.resource["valueQuantity"]
    assert (vq["value"], vq["code"]) == (6.99, "mmol/L")
    assert vq["extension"][0] == {"url": ORIGINAL_QUANTITY_URL,
                                  "valueQuantity": before["valueQuantity"]}
    rr = result.resource["referenceRange"][0]
    assert (rr["low"]["value"], rr["high"]["value"]) == (3.89, 5.5)
    assert {q.path for q in result.quantities} == {
        "Observation.valueQuantity", "Observation.referenceRange[0].low",
        "Observation.referenceRange[0].high"}
    # The local flag system has no map: it is queued as unmapped; HL7 codes never are.
    assert [(u.system, u.code) for u in result.unmapped] == [
        ("http://hospital-a.example/flags", "H")]
    assert result.changed


def test_unmatched_and_unknown_local_codes_are_unmapped():
    obs = observation()
    obs["code"]["coding"] = [{"system": LOCAL_LAB, "code": "LAB-NONE"},
                             {"system": LOCAL_LAB, "code": "LAB-NEW"}]
    result = translate_resource(obs, MapSet(concept_maps()), normalise_units=False)
    assert [u.code for u in result.unmapped][:2] == ["LAB-NONE", "LAB-NEW"]
    assert result.resource["valueQuantity"] == obs["valueQuantity"]


def test_existing_standard_coding_is_not_duplicated_and_unchanged_is_same_object():
    obs = observation()
    obs["code"]["coding"].append({"system": LOINC, "code": "2345-7"})
    obs.pop("valueQuantity")
    obs.pop("referenceRange")
    obs.pop("interpretation")
    result = translate_resource(obs, concept_maps())
    assert result.resource is obs and not result.changed


def test_components_and_lone_codings():
    bp = {"resourceType": "Observation", "status": "final",
          "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
          "component": [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                         "valueQuantity": {"value": 140, "unit": "mmHg"}}]}
    result = translate_resource(bp, [])
    comp = result.resource["component"][0]["valueQuantity"]
    assert (comp["value"], comp["code"], comp["system"]) == (
        140, "mm[Hg]", "http://unitsofmeasure.org")
    enc = {"resourceType": "Encounter", "class": {"system": LOCAL_LAB, "code": "LAB-GLU"}}
    lone = translate_resource(enc, concept_maps())
    assert lone.resource is enc  # a lone Coding cannot hold a second coding
    assert [a.coding["code"] for a in lone.not_placed] == ["2345-7"]


def test_synthea_observations_keep_standard_codes():
    from huitong_testdata import synthea_bundles

    maps = MapSet([])
    seen = converted = 0
    for raw in synthea_bundles(limit=3, patients_only=True):
        for entry in json.loads(raw)["entry"]:
            res = entry["resource"]
            if res["resourceType"] != "Observation":
                continue
            seen += 1
            result = translate_resource(res, maps)
            assert not result.added and not result.unmapped  # Synthea codes are all standard
            for q in result.quantities:
                assert q.normalised["extension"][-1]["valueQuantity"] == q.original
                converted += 1
    assert seen > 0 and converted > 0

"""CWE / CE / CNE / ID / IS → FHIR ``Coding`` and ``CodeableConcept``.

v2-to-FHIR: https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-datatype-cwe-to-codeableconcept.html
Components 1–3 are the primary triplet (code, text, coding system), 4–6 the alternate, 9 the
original text. Coding-system names (HL7 table 0396,
https://terminology.hl7.org/CodeSystem-v2-0396.html) become FHIR system URIs; an HL7 table
(``HL70001``) becomes its ``terminology.hl7.org`` code system; a name we do not know is a
local code system under the channel's namespace, so codes are never dropped.
"""

from __future__ import annotations

import re
from typing import Any

from huitong.ingest.hl7v2.mapping.message import Value
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["coding_system", "cwe_codeable_concept", "cwe_coding", "table_concept"]

# HL7 table 0396 name → FHIR system (https://hl7.org/fhir/R4/terminologies-systems.html)
CODING_SYSTEMS: dict[str, str] = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "SNOMED-CT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "ICD-10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "I10P": "http://www.cms.gov/Medicare/Coding/ICD10",
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9CDX": "http://hl7.org/fhir/sid/icd-9-cm",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "MVX": "http://terminology.hl7.org/CodeSystem/MVX",
    "NDC": "http://hl7.org/fhir/sid/ndc",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "RXN": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "UCUM": "http://unitsofmeasure.org",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "CPT4": "http://www.ama-assn.org/go/cpt",
    "HCPCS": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "HCPT": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "NCIT": "http://ncimeta.nci.nih.gov",
    "UMLS": "http://www.nlm.nih.gov/research/umls",
    "NUCC": "http://nucc.org/provider-taxonomy",
    "NPI": "http://hl7.org/fhir/sid/us-npi",
    "ISO3166": "urn:iso:std:iso:3166",
    "ISO+": "urn:iso:std:iso:11073:10101",
    "ATC": "http://www.whocc.no/atc",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "HL7": "http://terminology.hl7.org/CodeSystem/v2-tables",
}
_HL7_TABLE = re.compile(r"^(?:HL7|HL7-)?(\d{4})$")


def coding_system(state: MapState, name: str) -> str | None:
    """The FHIR system URI for a v2 coding-system name (``None`` when ``name`` is empty)."""
    name = name.strip()
    if not name:
        return None
    known = CODING_SYSTEMS.get(name.upper())
    if known:
        return known
    table = _HL7_TABLE.match(name.upper())
    if table and name.upper().startswith("HL7"):
        return f"http://terminology.hl7.org/CodeSystem/v2-{table.group(1)}"
    if name.startswith(("http://", "https://", "urn:")) and " " not in name:
        return name
    return state.local_system(f"codesystem:{name}")


def _coding(state: MapState, code: str, display: str, system: str, default_system: str | None
            ) -> dict[str, Any] | None:
    if not code:
        return None
    out: dict[str, Any] = {}
    resolved = coding_system(state, system) or default_system
    if resolved:
        out["system"] = resolved
    out["code"] = code
    if display:
        out["display"] = display
    return out


def cwe_coding(state: MapState, cwe: Value, default_system: str | None = None
               ) -> dict[str, Any] | None:
    """The primary coding of a CWE (``None`` without a code)."""
    return _coding(state, cwe[1], cwe[2], cwe[3], default_system)


def cwe_codeable_concept(state: MapState, cwe: Value, default_system: str | None = None
                         ) -> dict[str, Any] | None:
    """A CWE/CE as a CodeableConcept: primary and alternate codings, text from CWE.9 (or
    the text of a code-less value). ``default_system`` applies to a primary code sent
    without a coding system (e.g. an HL7 table the field is bound to)."""
    if cwe.empty:
        return None
    codings = [
        c
        for c in (
            _coding(state, cwe[1], cwe[2], cwe[3], default_system),
            _coding(state, cwe[4], cwe[5], cwe[6], None),
        )
        if c
    ]
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = codings
    text = cwe[9] or ("" if cwe[1] else cwe[2])
    if not codings and not text:
        text = cwe.text
    if text:
        out["text"] = text
    return out or None


def table_concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with a single coding from a fixed FHIR code system."""
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}

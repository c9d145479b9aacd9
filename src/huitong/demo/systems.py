"""Identifier systems and code systems used by the demo region.

National systems are used where one exists; the rest are Huitong-local ``urn:huitong:``
URIs, named here once so the MPI, ingest mappings and tests refer to the same strings.
"""

from __future__ import annotations

__all__ = [
    "ATC",
    "CONDITION_CATEGORY",
    "CONDITION_CLINICAL",
    "CONDITION_VERIFICATION",
    "CS_DEPARTMENT",
    "CS_ENCOUNTER_TYPE",
    "CS_LAB_PANEL",
    "CS_ORGANIZATION_KIND",
    "CVX",
    "ICD10",
    "ID_HEALTH_RECORD",
    "ID_MEDICAL_INSURANCE",
    "ID_ORG_CODE",
    "ID_PRACTITIONER_LICENCE",
    "ID_RESIDENT",
    "ID_USCC",
    "LOINC",
    "SNOMED",
    "UCUM",
    "V2_IDENTIFIER_TYPE",
    "V3_ACT_CODE",
    "V3_INTERPRETATION",
    "mrn_system",
    "visit_system",
]

# --- identifier systems -------------------------------------------------------------------

# Resident ID number (居民身份证号, GB 11643-1999). 2.16.156.10011.1.3 is the OID China's
# national EMR sharing-document standard (WS/T 500) assigns to "patient ID card number";
# it is what Chinese CDA/FHIR feeds already send, so the MPI can match on it unchanged.
# (The brief suggested 2.16.840.1.113883.2.23.1.1, an HL7-affiliate arc we could not tie
# to the Chinese resident ID, so we use the national one.)
ID_RESIDENT = "urn:oid:2.16.156.10011.1.3"
# Resident health-record number (城乡居民健康档案编号), WS/T 500 OID; issued by the
# community health centre that manages the person.
ID_HEALTH_RECORD = "urn:oid:2.16.156.10011.1.2"
# Basic medical-insurance card number (医保卡号); no national URI exists.
ID_MEDICAL_INSURANCE = "urn:huitong:medical-insurance"
# Unified social credit code (统一社会信用代码, GB 32100-2015) of an organisation.
ID_USCC = "urn:huitong:uscc"
# Huitong's short code for a member institution; it also names the MRN/visit systems.
ID_ORG_CODE = "urn:huitong:org-code"
# Physician/nurse practising-certificate number (执业证书编码).
ID_PRACTITIONER_LICENCE = "urn:huitong:practitioner-licence"


def mrn_system(org_code: str) -> str:
    """Medical-record-number system of one institution (each numbers its patients alone)."""
    return f"urn:huitong:mrn:{org_code}"


def visit_system(org_code: str) -> str:
    """Visit-number (门诊号/住院号) system of one institution."""
    return f"urn:huitong:visit:{org_code}"


# --- local code systems ------------------------------------------------------------------

CS_ORGANIZATION_KIND = "urn:huitong:code:organization-kind"
CS_DEPARTMENT = "urn:huitong:code:department"
CS_ENCOUNTER_TYPE = "urn:huitong:code:encounter-type"
CS_LAB_PANEL = "urn:huitong:code:lab-panel"

# --- external code systems (canonical URIs from https://hl7.org/fhir/R4/terminologies-systems.html)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
CVX = "http://hl7.org/fhir/sid/cvx"
V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"

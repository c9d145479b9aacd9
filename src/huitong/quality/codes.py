"""Code tables the shipped rules read, authored for Huitong from the published code systems.

Each table is the *default* of a rule parameter, so a region can extend or trim it in its
configuration without a code change. Codes were taken from the public browsers of each
system and checked against the displays in the shared Synthea sample where it uses them:

- ICD-10: WHO ICD-10 2019 (https://icd.who.int/browse10/2019/en), chapter XV "Pregnancy,
  childbirth and the puerperium" is O00–O99 (ICD-10-CM adds O9A); Z33–Z39 cover pregnant
  state, supervision of pregnancy, antenatal screening, outcome of delivery and postpartum
  care; ICD-10-CM's Z3A is "weeks of gestation". Prostate: C61, D07.5, D29.1, D40.0, N40–N42,
  Z12.5, and ICD-10-CM R97.2 (elevated prostate specific antigen). The national clinical
  edition (国家临床版 2.0) extends WHO codes below these categories, so prefix matching covers
  it too.
- SNOMED CT (https://browser.ihtsdotools.org/): concept ids with their fully specified names
  in the comments.
- LOINC (https://loinc.org/): codes and the *property* axis (MCnc mass concentration, SCnc
  substance concentration, NCnc number concentration, CCnc catalytic concentration, MFr/VFr
  fractions, EntVol/EntMass entitic volume/mass, …) of common tests.
- The vital-sign codes are those of the FHIR vital-signs profile
  (https://hl7.org/fhir/R4/observation-vitalsigns.html).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ICD10_SYSTEMS",
    "LAB_PROPERTIES",
    "LOINC",
    "PREGNANCY_ICD10_PREFIXES",
    "PREGNANCY_LOINC",
    "PREGNANCY_SNOMED",
    "PROPERTY_DIMENSIONS",
    "PROSTATE_ICD10_PREFIXES",
    "PROSTATE_LOINC",
    "PROSTATE_SNOMED",
    "SNOMED",
    "UCUM",
    "VITAL_SIGNS",
    "VitalSign",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

# Canonical URIs of the ICD-10 family (https://hl7.org/fhir/R4/terminologies-systems.html);
# the national clinical edition's URI is added by the region where its loader registers one.
ICD10_SYSTEMS: tuple[str, ...] = (
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-cm",
)

# --- pregnancy ---------------------------------------------------------------------------------

PREGNANCY_ICD10_PREFIXES: tuple[str, ...] = (
    "O",  # chapter XV: O00–O99 and ICD-10-CM's O9A
    "Z33",  # pregnant state
    "Z34",  # supervision of normal pregnancy
    "Z35",  # supervision of high-risk pregnancy
    "Z36",  # antenatal screening
    "Z37",  # outcome of delivery
    "Z39",  # postpartum care and examination
    "Z3A",  # weeks of gestation (ICD-10-CM)
)

PREGNANCY_SNOMED: tuple[str, ...] = (
    "77386006",  # Pregnancy (finding)
    "72892002",  # Normal pregnancy (finding)
    "47200007",  # High risk pregnancy (finding)
    "19169002",  # Miscarriage in first trimester (disorder)
    "79586000",  # Tubal pregnancy (disorder)
    "35999006",  # Blighted ovum (disorder)
    "156073000",  # Fetus with unknown complication (disorder)
    "198992004",  # Antepartum eclampsia (disorder)
    "398254007",  # Pre-eclampsia (disorder)
    "11687002",  # Gestational diabetes mellitus (disorder)
    # procedures
    "252160004",  # Standard pregnancy test (procedure)
    "225158009",  # Auscultation of the fetal heart (procedure)
    "169230002",  # Ultrasound scan for fetal viability (procedure)
    "271442007",  # Fetal anatomy study (procedure)
    "66348005",  # Childbirth (procedure)
    "11466000",  # Cesarean section (procedure)
    "236974004",  # Instrumental delivery (procedure)
    "714812005",  # Induced termination of pregnancy (procedure)
)

PREGNANCY_LOINC: tuple[str, ...] = (
    "82810-3",  # Pregnancy status
    "11778-8",  # Delivery date Estimated
    "11884-4",  # Gestational age Estimated
    "49051-6",  # Gestational age in weeks
)

# --- prostate ----------------------------------------------------------------------------------

PROSTATE_ICD10_PREFIXES: tuple[str, ...] = (
    "C61",  # malignant neoplasm of prostate
    "D07.5",  # carcinoma in situ of prostate
    "D29.1",  # benign neoplasm of prostate
    "D40.0",  # neoplasm of uncertain behaviour of prostate
    "N40",  # hyperplasia of prostate
    "N41",  # inflammatory diseases of prostate
    "N42",  # other disorders of prostate
    "R97.2",  # elevated prostate specific antigen (ICD-10-CM)
    "Z12.5",  # screening for malignant neoplasm of prostate
)

PROSTATE_SNOMED: tuple[str, ...] = (
    "126906006",  # Neoplasm of prostate (disorder)
    "92691004",  # Carcinoma in situ of prostate (disorder)
    "399068003",  # Malignant tumor of prostate (disorder)
    "266569009",  # Benign prostatic hyperplasia (disorder)
    "9713002",  # Prostatitis (disorder)
    "90470006",  # Prostatectomy (procedure)
)

PROSTATE_LOINC: tuple[str, ...] = (
    "2857-1",  # Prostate specific Ag [Mass/volume] in Serum or Plasma
    "10886-0",  # Prostate Specific Ag Free [Mass/volume] in Serum or Plasma
    "12841-3",  # Prostate Specific Ag Free/Prostate specific Ag.total in Serum or Plasma
)

# --- vital signs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VitalSign:
    """Defaults of one physiological-bounds rule: which LOINC codes, in which UCUM unit the
    bounds are written, and the bounds (inclusive). ``molar_mass`` (g/mol) lets a bound in a
    substance concentration also judge a mass concentration (glucose mmol/L vs mg/dL)."""

    key: str
    en: str
    zh: str
    codes: tuple[str, ...]
    unit: str
    low: float
    high: float
    molar_mass: float = 0.0


# Bounds are the limits of survivable physiology, not reference ranges: a value outside them
# is almost certainly a unit or keying error (e.g. systolic 1200 for 120).
VITAL_SIGNS: tuple[VitalSign, ...] = (
    VitalSign("systolic", "Systolic blood pressure", "收缩压", ("8480-6",), "mm[Hg]", 40, 300),
    VitalSign("diastolic", "Diastolic blood pressure", "舒张压", ("8462-4",), "mm[Hg]", 20, 200),
    VitalSign("heart-rate", "Heart rate", "心率", ("8867-4",), "/min", 20, 300),
    VitalSign("respiratory-rate", "Respiratory rate", "呼吸频率", ("9279-1",), "/min", 4, 80),
    VitalSign(
        "oxygen-saturation", "Oxygen saturation", "血氧饱和度", ("59408-5", "2708-6"), "%", 50, 100
    ),
    VitalSign(
        "body-temperature",
        "Body temperature",
        "体温",
        ("8310-5", "8331-1", "8328-7"),
        "Cel",
        25,
        45,
    ),
    VitalSign("body-weight", "Body weight", "体重", ("29463-7", "3141-9"), "kg", 0.2, 500),
    VitalSign("body-height", "Body height", "身高", ("8302-2", "8306-3"), "cm", 20, 280),
    VitalSign("bmi", "Body mass index", "体重指数", ("39156-5",), "kg/m2", 8, 100),
    VitalSign("head-circumference", "Head circumference", "头围", ("9843-4",), "cm", 15, 80),
    VitalSign(
        "glucose",
        "Glucose",
        "血糖",
        ("2339-0", "2345-7", "41653-7", "15074-8", "14749-6", "14743-9"),
        "mmol/L",
        0.5,
        60,
        molar_mass=180.156,
    ),
)

# --- lab units ---------------------------------------------------------------------------------

# The LOINC property of common tests (the second axis of the LOINC name).
LAB_PROPERTIES: dict[str, str] = {
    # mass concentration
    "2339-0": "MCnc",  # Glucose [Mass/volume] in Blood
    "2345-7": "MCnc",  # Glucose [Mass/volume] in Serum or Plasma
    "41653-7": "MCnc",  # Glucose [Mass/volume] in Capillary blood by Glucometer
    "6299-2": "MCnc",  # Urea nitrogen [Mass/volume] in Blood
    "3094-0": "MCnc",  # Urea nitrogen [Mass/volume] in Serum or Plasma
    "38483-4": "MCnc",  # Creatinine [Mass/volume] in Blood
    "2160-0": "MCnc",  # Creatinine [Mass/volume] in Serum or Plasma
    "49765-1": "MCnc",  # Calcium [Mass/volume] in Blood
    "17861-6": "MCnc",  # Calcium [Mass/volume] in Serum or Plasma
    "2093-3": "MCnc",  # Cholesterol [Mass/volume] in Serum or Plasma
    "2571-8": "MCnc",  # Triglyceride [Mass/volume] in Serum or Plasma
    "18262-6": "MCnc",  # Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay
    "13457-7": "MCnc",  # Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation
    "2085-9": "MCnc",  # Cholesterol in HDL [Mass/volume] in Serum or Plasma
    "718-7": "MCnc",  # Hemoglobin [Mass/volume] in Blood
    "786-4": "MCnc",  # MCHC [Mass/volume]
    "2885-2": "MCnc",  # Protein [Mass/volume] in Serum or Plasma
    "1751-7": "MCnc",  # Albumin [Mass/volume] in Serum or Plasma
    "10834-0": "MCnc",  # Globulin [Mass/volume] in Serum by calculation
    "1975-2": "MCnc",  # Bilirubin.total [Mass/volume] in Serum or Plasma
    "2857-1": "MCnc",  # Prostate specific Ag [Mass/volume] in Serum or Plasma
    "10886-0": "MCnc",  # Prostate Specific Ag Free [Mass/volume] in Serum or Plasma
    "33762-6": "MCnc",  # Natriuretic peptide.B prohormone N-Terminal [Mass/volume]
    # substance concentration
    "2947-0": "SCnc",  # Sodium [Moles/volume] in Blood
    "2951-2": "SCnc",  # Sodium [Moles/volume] in Serum or Plasma
    "6298-4": "SCnc",  # Potassium [Moles/volume] in Blood
    "2823-3": "SCnc",  # Potassium [Moles/volume] in Serum or Plasma
    "2069-3": "SCnc",  # Chloride [Moles/volume] in Blood
    "2075-0": "SCnc",  # Chloride [Moles/volume] in Serum or Plasma
    "20565-8": "SCnc",  # Carbon dioxide, total [Moles/volume] in Blood
    "2028-9": "SCnc",  # Carbon dioxide, total [Moles/volume] in Serum or Plasma
    "15074-8": "SCnc",  # Glucose [Moles/volume] in Blood
    "14749-6": "SCnc",  # Glucose [Moles/volume] in Serum or Plasma
    "14743-9": "SCnc",  # Glucose [Moles/volume] in Capillary blood by Glucometer
    "14682-9": "SCnc",  # Creatinine [Moles/volume] in Serum or Plasma
    # number concentration
    "6690-2": "NCnc",  # Leukocytes [#/volume] in Blood by Automated count
    "789-8": "NCnc",  # Erythrocytes [#/volume] in Blood by Automated count
    "777-3": "NCnc",  # Platelets [#/volume] in Blood by Automated count
    # catalytic concentration
    "6768-6": "CCnc",  # Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma
    "1742-6": "CCnc",  # Alanine aminotransferase [Enzymatic activity/volume] in S/P
    "1920-8": "CCnc",  # Aspartate aminotransferase [Enzymatic activity/volume] in S/P
    # fractions
    "4548-4": "MFr",  # Hemoglobin A1c/Hemoglobin.total in Blood
    "4544-3": "VFr",  # Hematocrit [Volume Fraction] of Blood by Automated count
    "20570-8": "VFr",  # Hematocrit [Volume Fraction] of Blood
    "59408-5": "MFr",  # Oxygen saturation in Arterial blood by Pulse oximetry
    "2708-6": "MFr",  # Oxygen saturation in Arterial blood
    # entitic
    "787-2": "EntVol",  # MCV [Entitic volume]
    "21000-5": "EntVol",  # Erythrocyte distribution width [Entitic volume]
    "32623-1": "EntVol",  # Platelet mean volume [Entitic volume] in Blood
    "32207-3": "EntVol",  # Platelet distribution width [Entitic volume] in Blood
    "785-6": "EntMass",  # MCH [Entitic mass]
    # rates and physical measures
    "33914-3": "ArVRat",  # Glomerular filtration rate/1.73 sq M.predicted
    "8867-4": "NRat",  # Heart rate
    "9279-1": "NRat",  # Respiratory rate
    "8480-6": "Pres",  # Systolic blood pressure
    "8462-4": "Pres",  # Diastolic blood pressure
    "8310-5": "Temp",  # Body temperature
    "8331-1": "Temp",  # Oral temperature
    "29463-7": "Mass",  # Body weight
    "8302-2": "Len",  # Body height
    "9843-4": "Len",  # Head Occipital-frontal circumference
    "39156-5": "Ratio/BMI",  # Body mass index: LOINC says Ratio; its unit is kg/m2
}

# What each property's unit must measure, as base dimensions with exponents (UCUM's base
# units: https://ucum.org/ucum#section-Base-Units). A property may accept several: enzyme
# activity comes in U/L (substance/time/volume) or in [IU]/L, which UCUM leaves arbitrary.
PROPERTY_DIMENSIONS: dict[str, tuple[tuple[tuple[str, int], ...], ...]] = {
    "MCnc": ((("mass", 1), ("length", -3)),),
    "SCnc": ((("substance", 1), ("length", -3)),),
    "NCnc": ((("length", -3),),),
    "CCnc": ((("substance", 1), ("time", -1), ("length", -3)), (("length", -3),)),
    "MFr": ((),),
    "VFr": ((),),
    "EntVol": ((("length", 3),),),
    "EntMass": ((("mass", 1),),),
    # the "/1.73 m2" normalisation is written as an annotation or as an area
    "ArVRat": ((("length", 3), ("time", -1)), (("length", 1), ("time", -1))),
    "NRat": ((("time", -1),),),
    "Pres": ((("mass", 1), ("length", -1), ("time", -2)),),
    "Temp": ((("temperature", 1),),),
    "Mass": ((("mass", 1),),),
    "Len": ((("length", 1),),),
    "Ratio/BMI": ((("mass", 1), ("length", -2)),),
}

"""The home-device measurements Huitong understands: LOINC and IEEE 11073-10101 (MDC) codes,
the UCUM unit each is stored in, the units accepted and how they convert, and the range of
physiologically plausible values.

Codes follow the FHIR vital-signs profile (https://hl7.org/fhir/R4/observation-vitalsigns.html)
and the Personal Health Device IG (http://hl7.org/fhir/uv/phd/): the blood-pressure panel
85354-9 (MDC 150020) with systolic 8480-6 (150021), diastolic 8462-4 (150022) and mean
8478-0 (150023) components; heart rate 8867-4 (MDC 147842); SpO2 59408-5 with the
vital-signs code 2708-6 (MDC 150456); body weight 29463-7 (MDC 188736); glucose by unit and
sample (15074-8 moles/volume in blood, 41653-7 mass/volume in capillary blood by glucometer,
2339-0 mass/volume in blood; MDC 160184 capillary whole blood, 160196 capillary plasma).

Plausibility ranges are wide on purpose: they catch unit mix-ups and sensor faults (a
systolic of 1,200, an SpO2 of 0), not clinical abnormality.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BP_PANEL",
    "BP_PARTS",
    "CATEGORY",
    "KINDS",
    "LOINC",
    "MDC",
    "UCUM",
    "Code",
    "Kind",
    "glucose_code",
]

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass(frozen=True, slots=True)
class Code:
    system: str
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True, slots=True)
class Kind:
    """One measurement type. ``units`` maps each accepted unit spelling to a factor that
    converts it into ``unit`` (the UCUM code stored)."""

    key: str
    codes: tuple[Code, ...]
    unit: str
    low: float
    high: float
    category: str = "vital-signs"
    units: dict[str, float] = field(default_factory=dict)
    zh: str = ""


_MMHG = {"mm[Hg]": 1.0, "mmHg": 1.0, "mmhg": 1.0, "毫米汞柱": 1.0, "kPa": 7.50062, "kpa": 7.50062}


def _bp(key: str, loinc: str, name: str, mdc: str, mdc_name: str, low: float, high: float,
        zh: str) -> Kind:
    return Kind(key, (Code(LOINC, loinc, name), Code(MDC, mdc, mdc_name)), "mm[Hg]", low, high,
                units=_MMHG, zh=zh)


KINDS: dict[str, Kind] = {k.key: k for k in (
    _bp("systolic", "8480-6", "Systolic blood pressure", "150021", "MDC_PRESS_BLD_NONINV_SYS",
        40, 300, "收缩压"),
    _bp("diastolic", "8462-4", "Diastolic blood pressure", "150022", "MDC_PRESS_BLD_NONINV_DIA",
        20, 200, "舒张压"),
    _bp("mean-arterial-pressure", "8478-0", "Mean blood pressure", "150023",
        "MDC_PRESS_BLD_NONINV_MEAN", 30, 250, "平均动脉压"),
    Kind("heart-rate", (Code(LOINC, "8867-4", "Heart rate"),
                        Code(MDC, "147842", "MDC_ECG_HEART_RATE")), "/min", 20, 300,
         units={"/min": 1.0, "bpm": 1.0, "{beats}/min": 1.0, "beats/min": 1.0, "次/分": 1.0,
                "次/分钟": 1.0}, zh="心率"),
    Kind("spo2", (Code(LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse "
                       "oximetry"),
                  Code(LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
                  Code(MDC, "150456", "MDC_PULS_OXIM_SAT_O2")), "%", 50, 100,
         units={"%": 1.0}, zh="血氧饱和度"),
    Kind("body-weight", (Code(LOINC, "29463-7", "Body weight"),
                         Code(MDC, "188736", "MDC_MASS_BODY_ACTUAL")), "kg", 0.5, 500,
         units={"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "斤": 0.5,
                "公斤": 1.0}, zh="体重"),
    Kind("glucose", (), "mmol/L", 0.5, 55, category="laboratory",
         units={"mmol/L": 1.0, "mmol/l": 1.0, "mg/dL": 1.0, "mg/dl": 1.0}, zh="血糖"),
)}

BP_PARTS = ("systolic", "diastolic", "mean-arterial-pressure")
BP_PANEL = (Code(LOINC, "85354-9", "Blood pressure panel with all children optional"),
            Code(MDC, "150020", "MDC_PRESS_BLD_NONINV"))

GLUCOSE_SAMPLES = ("capillary-whole-blood", "capillary-plasma", "blood")
_GLUCOSE_MDC = {
    "capillary-whole-blood": Code(MDC, "160184", "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD"),
    "capillary-plasma": Code(MDC, "160196", "MDC_CONC_GLU_CAPILLARY_PLASMA"),
}
# Plausible glucose in mg/dL (the Kind's range is in mmol/L).
GLUCOSE_MG_DL = (9.0, 1000.0)


def glucose_code(unit: str, sample: str) -> tuple[Code, ...]:
    """The codes of a glucose reading: LOINC by unit (moles or mass per volume) and sample,
    plus the MDC code for capillary samples."""
    if unit == "mmol/L":
        loinc = Code(LOINC, "15074-8", "Glucose [Moles/volume] in Blood")
    elif sample == "blood":
        loinc = Code(LOINC, "2339-0", "Glucose [Mass/volume] in Blood")
    else:
        loinc = Code(LOINC, "41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer")
    mdc = _GLUCOSE_MDC.get(sample)
    return (loinc, mdc) if mdc is not None else (loinc,)

"""The clinical vocabulary of the demo: drugs (ATC), formulary products, lab tests (LOINC),
diagnoses (ICD-10) and allergens (SNOMED CT), each with the Chinese name a clinician sees.

Lab tests use the molar (SI) LOINC codes because Chinese laboratories report mmol/L and
µmol/L; reference intervals follow the adult intervals of WS/T 404 where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# --- drugs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drug:
    key: str
    atc: str
    atc_display: str  # WHO ATC name, English
    name_zh: str  # what the prescription says
    dose: float
    dose_unit: str  # human unit label, Chinese where the prescription uses one
    dose_ucum: str
    times_per_day: int
    route: Literal["oral", "subcutaneous"]
    instruction: str  # 用法用量 as printed on the prescription
    product: str | None = None  # formulary Medication key; None: coded inline


DRUGS: dict[str, Drug] = {
    d.key: d
    for d in (
        Drug("amlodipine", "C08CA01", "amlodipine", "苯磺酸氨氯地平片", 5, "mg", "mg", 1,
             "oral", "口服，每日1次，每次5mg"),
        Drug("enalapril", "C09AA02", "enalapril", "马来酸依那普利片", 10, "mg", "mg", 2,
             "oral", "口服，每日2次，每次10mg"),
        Drug("hydrochlorothiazide", "C03AA03", "hydrochlorothiazide", "氢氯噻嗪片", 12.5, "mg",
             "mg", 1, "oral", "口服，每日1次，每次12.5mg，晨起服用"),
        Drug("losartan", "C09CA01", "losartan", "氯沙坦钾片", 50, "mg", "mg", 1,
             "oral", "口服，每日1次，每次50mg"),
        Drug("valsartan-amlodipine", "C09DB01", "valsartan and amlodipine",
             "缬沙坦氨氯地平片(Ⅰ)", 1, "片", "{tablet}", 1, "oral", "口服，每日1次，每次1片",
             product="valsartan-amlodipine"),
        Drug("metformin", "A10BA02", "metformin", "盐酸二甲双胍片", 500, "mg", "mg", 3,
             "oral", "口服，每日3次，每次500mg，餐中或餐后服用"),
        Drug("acarbose", "A10BF01", "acarbose", "阿卡波糖片", 50, "mg", "mg", 3,
             "oral", "口服，每日3次，每次50mg，与第一口饭同时嚼服"),
        Drug("insulin-glargine", "A10AE04", "insulin glargine", "甘精胰岛素注射液", 12, "单位",
             "[IU]", 1, "subcutaneous", "皮下注射，每晚睡前1次，每次12单位",
             product="insulin-glargine"),
        Drug("atorvastatin", "C10AA05", "atorvastatin", "阿托伐他汀钙片", 20, "mg", "mg", 1,
             "oral", "口服，每晚1次，每次20mg"),
    )
}  # fmt: skip

ROUTES = {
    "oral": ("26643006", "Oral route", "口服"),
    "subcutaneous": ("34206005", "Subcutaneous route", "皮下注射"),
}


@dataclass(frozen=True)
class Ingredient:
    atc: str
    atc_display: str
    name_zh: str
    amount: float
    unit: str
    ucum: str
    per: float
    per_unit: str
    per_ucum: str


@dataclass(frozen=True)
class Product:
    """A formulary product, loaded once as a Medication resource in the region bundle."""

    key: str
    name_zh: str
    atc: str
    atc_display: str
    form_snomed: str
    form_display: str
    form_zh: str
    ingredients: tuple[Ingredient, ...]


PRODUCTS: dict[str, Product] = {
    p.key: p
    for p in (
        Product("insulin-glargine", "甘精胰岛素注射液(3ml:300单位，预填充注射笔)", "A10AE04",
                "insulin glargine", "385219001", "Solution for injection", "注射液",
                (Ingredient("A10AE04", "insulin glargine", "甘精胰岛素", 100, "单位", "[IU]",
                            1, "ml", "mL"),)),
        Product("valsartan-amlodipine", "缬沙坦氨氯地平片(Ⅰ)(80mg/5mg)", "C09DB01",
                "valsartan and amlodipine", "385055001", "Tablet", "片剂",
                (Ingredient("C09CA03", "valsartan", "缬沙坦", 80, "mg", "mg",
                            1, "片", "{tablet}"),
                 Ingredient("C08CA01", "amlodipine", "氨氯地平", 5, "mg", "mg",
                            1, "片", "{tablet}"))),
    )
}  # fmt: skip

# --- laboratory ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabTest:
    key: str
    loinc: str
    display: str  # LOINC long common name
    name_zh: str
    unit: str
    ucum: str
    decimals: int
    low: float | None  # adult reference interval; None where only one bound is defined
    high: float | None
    low_female: float | None = None  # when the interval differs by sex
    high_female: float | None = None

    def interval(self, sex: str) -> tuple[float | None, float | None]:
        if sex == "female" and (self.low_female is not None or self.high_female is not None):
            return self.low_female, self.high_female
        return self.low, self.high


LAB_TESTS: dict[str, LabTest] = {
    t.key: t
    for t in (
        LabTest("glucose", "15074-8", "Glucose [Moles/volume] in Blood", "空腹血糖", "mmol/L",
                "mmol/L", 2, 3.9, 6.1),
        LabTest("hba1c", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "糖化血红蛋白",
                "%", "%", 1, 4.0, 6.0),
        LabTest("cholesterol", "14647-2", "Cholesterol [Moles/volume] in Serum or Plasma",
                "总胆固醇", "mmol/L", "mmol/L", 2, None, 5.2),
        LabTest("triglyceride", "14927-8", "Triglyceride [Moles/volume] in Serum or Plasma",
                "甘油三酯", "mmol/L", "mmol/L", 2, None, 1.7),
        LabTest("hdl", "14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma",
                "高密度脂蛋白胆固醇", "mmol/L", "mmol/L", 2, 1.04, None),
        LabTest("ldl", "22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma",
                "低密度脂蛋白胆固醇", "mmol/L", "mmol/L", 2, None, 3.4),
        LabTest("creatinine", "14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "肌酐",
                "μmol/L", "umol/L", 0, 57, 111, 41, 81),
        LabTest("potassium", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "钾",
                "mmol/L", "mmol/L", 2, 3.5, 5.3),
        LabTest("alt", "1742-6",
                "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
                "丙氨酸氨基转移酶", "U/L", "U/L", 0, 9, 50, 7, 40),
        LabTest("ast", "1920-8",
                "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
                "天门冬氨酸氨基转移酶", "U/L", "U/L", 0, 15, 40, 13, 35),
    )
}  # fmt: skip


@dataclass(frozen=True)
class LabPanel:
    """One DiagnosticReport's worth of tests, drawn from one specimen type."""

    key: str  # local panel code
    name_zh: str
    loinc: str | None
    loinc_display: str | None
    specimen: Literal["BLD", "SER"]  # HL7 v2 table 0487
    tests: tuple[str, ...]


LAB_PANELS: dict[str, LabPanel] = {
    p.key: p
    for p in (
        LabPanel("glucose", "血糖", None, None, "BLD", ("glucose",)),
        LabPanel("diabetes", "糖代谢", None, None, "BLD", ("glucose", "hba1c")),
        LabPanel("lipid", "血脂四项", "57698-3", "Lipid panel with direct LDL - Serum or Plasma",
                 "SER", ("cholesterol", "triglyceride", "hdl", "ldl")),
        LabPanel("renal", "肾功能", "24362-6", "Renal function 2000 panel - Serum or Plasma",
                 "SER", ("creatinine", "potassium")),
        LabPanel("liver", "肝功能", "24325-3", "Hepatic function 2000 panel - Serum or Plasma",
                 "SER", ("alt", "ast")),
    )
}  # fmt: skip

SPECIMEN_TYPES = {"BLD": ("Whole blood", "全血"), "SER": ("Serum", "血清")}

# --- diagnoses (ICD-10, Chinese clinical display) ---------------------------------------------

HYPERTENSION = ("I10", "原发性高血压")
TYPE2_DIABETES = ("E11.9", "2型糖尿病")

VISIT_REASONS: dict[str, str] = {
    "Z00.0": "一般医学检查",
    "Z00.1": "常规儿童健康检查",
    "Z34.9": "正常妊娠监督",
    "J06.9": "急性上呼吸道感染",
    "J20.9": "急性支气管炎",
    "K29.7": "胃炎",
    "M54.5": "腰痛",
    "R51": "头痛",
    "G47.0": "失眠",
}
# Complaints that bring an adult to a hospital outpatient clinic, most common first.
ACUTE_REASONS = ("J06.9", "J06.9", "J20.9", "K29.7", "M54.5", "R51")
TCM_REASONS = ("G47.0", "M54.5", "K29.7")

# --- allergens (SNOMED CT substance) -----------------------------------------------------------


@dataclass(frozen=True)
class Allergen:
    snomed: str
    display: str
    name_zh: str
    category: Literal["medication", "food"]
    criticality: Literal["low", "high"]
    weight: int  # relative frequency in the demo population


ALLERGENS = (
    Allergen("764146007", "Penicillin", "青霉素", "medication", "high", 5),
    Allergen("387406002", "Sulfonamide", "磺胺类药物", "medication", "low", 2),
    Allergen("44027008", "Seafood", "海鲜", "food", "low", 3),
)

REACTIONS = (
    ("271807003", "Eruption of skin", "皮疹"),
    ("126485001", "Urticaria", "荨麻疹"),
)
ANAPHYLAXIS = ("39579001", "Anaphylaxis", "过敏性休克")

INFLUENZA_VACCINE = ("140", "Influenza, seasonal, injectable, preservative free", "流感疫苗")

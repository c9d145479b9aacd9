"""Connect (通): code systems, value sets, concept maps, units and ingest translation.

Pure logic over FHIR resources (dicts). Resources come through one seam,
:class:`TerminologySource`; :class:`Terminology` answers ``$lookup``, ``$validate-code``,
``$expand``, ``$translate`` and ``$subsumes`` with ``Parameters``/``ValueSet`` dicts as the
R4 OperationDefinitions specify. Subpackages: ``loaders`` (files → CodeSystem), ``units``
(UCUM), ``mapping`` (the mapping workbench and unmapped queue).
"""

from huitong.terminology.index import CodeSystemIndex, Concept, build_index
from huitong.terminology.ingest import (
    STANDARD_SYSTEMS,
    MapSet,
    TranslationResult,
    translate_resource,
)
from huitong.terminology.pinyin import pinyin_keys
from huitong.terminology.service import OPERATION_DEFINITIONS, Terminology
from huitong.terminology.source import InMemoryTerminologySource, TerminologySource

__all__ = [
    "OPERATION_DEFINITIONS", "STANDARD_SYSTEMS", "CodeSystemIndex", "Concept",
    "InMemoryTerminologySource", "MapSet", "Terminology", "TerminologySource",
    "TranslationResult", "build_index", "pinyin_keys", "translate_resource",
]

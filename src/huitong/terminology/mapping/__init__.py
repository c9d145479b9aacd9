"""Local-to-standard mapping: the workbench and the unmapped-codes queue."""

from huitong.terminology.mapping.unmapped import UnmappedCode, UnmappedReport, unmapped_report
from huitong.terminology.mapping.workbench import (
    Candidate,
    LocalConcept,
    MappingDecision,
    Proposal,
    TargetNames,
    accept,
    candidates_for,
    concept_map_from_decisions,
    correct,
    propose_mappings,
)

__all__ = [
    "Candidate", "LocalConcept", "MappingDecision", "Proposal", "TargetNames", "UnmappedCode",
    "UnmappedReport", "accept", "candidates_for", "concept_map_from_decisions", "correct",
    "propose_mappings", "unmapped_report",
]

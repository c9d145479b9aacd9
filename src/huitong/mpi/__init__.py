"""Master patient index: the identity logic that makes one person one record.

Pure library: records in, scores, decisions and link-state transitions out. Storage of
blocking keys, links and the review queue, and the HTTP endpoints, live elsewhere.
"""

from huitong.mpi.blocking import blocking_keys, candidate_pairs
from huitong.mpi.decisions import LinkAction, decide, pair_key
from huitong.mpi.golden import GoldenSource, assemble_golden
from huitong.mpi.links import (
    Link,
    LinkError,
    LinkEvent,
    LinkState,
    link,
    mark_certainly_not,
    merge,
    unlink,
    unmerge,
)
from huitong.mpi.model import (
    GRADES,
    ComparisonParams,
    FieldEvidence,
    MatchModel,
    ScoredPair,
    Thresholds,
    explain,
    score_pair,
)
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.resident_id import ResidentId, ResidentIdError, parse_resident_id
from huitong.mpi.spec import IDENTITY_SPEC, LinkageSpec, Rule, register_spec
from huitong.mpi.training import TrainingReport, train_model

__all__ = [
    "GRADES",
    "IDENTITY_SPEC",
    "ComparisonParams",
    "FieldEvidence",
    "GoldenSource",
    "IdentityRecord",
    "Link",
    "LinkAction",
    "LinkError",
    "LinkEvent",
    "LinkState",
    "LinkageSpec",
    "MatchModel",
    "ResidentId",
    "ResidentIdError",
    "Rule",
    "ScoredPair",
    "Thresholds",
    "TrainingReport",
    "assemble_golden",
    "blocking_keys",
    "candidate_pairs",
    "decide",
    "explain",
    "link",
    "mark_certainly_not",
    "merge",
    "pair_key",
    "parse_resident_id",
    "record_from_patient",
    "register_spec",
    "score_pair",
    "train_model",
    "unlink",
    "unmerge",
]

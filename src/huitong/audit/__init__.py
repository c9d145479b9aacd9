"""The verifiable audit log: entries, their FHIR AuditEvent form, and the Merkle log.

- :mod:`~huitong.audit.entry` — an audit entry as data and its canonical bytes;
- :mod:`~huitong.audit.auditevent` — the FHIR R4 AuditEvent for an entry;
- :mod:`~huitong.audit.hashing`, :mod:`~huitong.audit.tree` — RFC 9162 hashing and the pure
  plans saying which stored subtree hashes a root or proof needs;
- :mod:`~huitong.audit.frontier`, :mod:`~huitong.audit.storage`, :mod:`~huitong.audit.log` —
  appending in O(log n) over a node store (in memory here; SQL in the store layer);
- :mod:`~huitong.audit.proofs` — RFC 9162 inclusion and consistency verification;
- :mod:`~huitong.audit.checkpoint` — Ed25519-signed tree heads;
- :mod:`~huitong.audit.verify` — verifying a whole log, with a bilingual report.
"""

from huitong.audit.auditevent import HUITONG_AUDIT_SYSTEM, to_audit_event
from huitong.audit.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    key_id,
    sign_checkpoint,
    verify_checkpoint,
)
from huitong.audit.entry import (
    ACTIONS,
    AccessBasis,
    Actor,
    AuditEntry,
    BasisKind,
    Outcome,
    PatientBasis,
    canonical_bytes,
    parse_entry,
)
from huitong.audit.frontier import Frontier
from huitong.audit.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, split_point
from huitong.audit.log import MerkleLog
from huitong.audit.proofs import root_from_inclusion_proof, verify_consistency, verify_inclusion
from huitong.audit.storage import MemoryNodeStore, NodeReader, NodeStore
from huitong.audit.tree import (
    NodeId,
    ProofPlan,
    consistency_plan,
    fold_range,
    inclusion_plan,
    range_nodes,
    root_plan,
)
from huitong.audit.verdict import Verdict
from huitong.audit.verify import Finding, VerificationReport, verify_log

__all__ = [
    "ACTIONS",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HUITONG_AUDIT_SYSTEM",
    "AccessBasis",
    "Actor",
    "AuditEntry",
    "BasisKind",
    "Checkpoint",
    "Finding",
    "Frontier",
    "MemoryNodeStore",
    "MerkleLog",
    "NodeId",
    "NodeReader",
    "NodeStore",
    "Outcome",
    "PatientBasis",
    "ProofPlan",
    "SignedCheckpoint",
    "Verdict",
    "VerificationReport",
    "canonical_bytes",
    "consistency_plan",
    "fold_range",
    "inclusion_plan",
    "key_id",
    "leaf_hash",
    "node_hash",
    "parse_entry",
    "range_nodes",
    "root_from_inclusion_proof",
    "root_plan",
    "sign_checkpoint",
    "split_point",
    "to_audit_event",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
]

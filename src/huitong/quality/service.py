"""The data-quality engine in the write pipeline.

:meth:`QualityService.install` registers a write check and a write hook on the repository:

- the check assesses every resource about to be written against the rule set in force; a
  *reject* finding raises the bilingual :class:`~huitong.fhir.errors.FhirError` (422
  ``unprocessable``), so the whole transaction — a REST write, a transaction bundle, an HL7 v2
  message, a file row — is refused and nothing of it is kept;
- the hook, after the write, stores the resource version's findings and adds its checks to
  the counters of its institution × month × rule, in the same transaction.

Golden Patient records (tag ``urn:huitong:mpi|golden``) belong to the identity service and
are not checked. When one is (re)built, its source records are compared across institutions
(the cross-institution sex rule), because a new record is linked only after its own check.

The rules in force are the shipped library as the region's configuration document tunes it.
Documents are stored as versions in ``quality_config`` (from a file or the operator API); the
newest is applied without a restart, in this process at once and in other server processes
within ``reload_every_us``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huitong.clock import Clock
from huitong.fhir.dates import format_instant
from huitong.fhir.definitions import resource_types
from huitong.quality.config import load_config_file
from huitong.quality.context import RecordedSex, Subject
from huitong.quality.engine import assess, rejection_error
from huitong.quality.model import Assessment
from huitong.quality.repository_context import (
    UNKNOWN_ORGANIZATION,
    IdentityLinks,
    RepositoryContext,
    TxFacts,
    recorded_sexes,
)
from huitong.quality.ruleset import RuleSet
from huitong.quality.scores import (
    CheckCount,
    QualityReport,
    build_report,
    month_of,
)
from huitong.quality.store import (
    FindingQuery,
    StoredConfig,
    StoredFinding,
    add_check_counts,
    count_rows,
    latest_config,
    latest_config_id,
    record_finding_rows,
    save_config,
    search_findings,
)
from huitong.store.repository import Repository, StoredResource, Transaction

__all__ = ["CROSS_INSTITUTION_SEX_RULE", "QualityService"]

CROSS_INSTITUTION_SEX_RULE = "patient.sex-agrees-across-institutions"
# The identity service's tag on golden records (huitong.mpi.service.GOLDEN_TAG); quality may
# not import the identity layer, so the tag is matched here by value.
_GOLDEN = ("urn:huitong:mpi", "golden")
_CHINA_STANDARD_TIME = 480


def _epoch_us(year: int, month: int, utc_offset_minutes: int) -> int:
    """Microseconds since the epoch (UTC) at the start of ``year-month`` on a clock
    ``utc_offset_minutes`` ahead of UTC."""
    start = datetime(year, month, 1, tzinfo=UTC) - timedelta(minutes=utc_offset_minutes)
    return (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _is_golden(resource: Mapping[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(isinstance(t, dict) and (t.get("system"), t.get("code")) == _GOLDEN for t in tags)


@dataclass(slots=True)
class _Pending:
    """An assessment waiting for its write to complete (check → hook)."""

    assessment: Assessment
    version: int
    organization: str
    month: str
    source: str | None
    ruleset: RuleSet
    checked_at: int  # the service's clock at the check: the findings' created_at
    stored: bool = False


@dataclass(slots=True)
class _TxState:
    facts: TxFacts = field(default_factory=TxFacts)
    pending: dict[str, _Pending] = field(default_factory=dict)
    # Written once, at the end of the transaction (see QualityService._flush).
    findings: list[tuple[Any, ...]] = field(default_factory=list)
    # (organization, month, rule id) → [category, applicable, failed]: added up here, one
    # upsert row per key at the end (a CheckCount per rule per resource cost more than the
    # rules themselves).
    counts: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)


class _SexesFromGolden:
    """The context of the late cross-institution check: the other sources' sexes as read
    inside the writing transaction."""

    __slots__ = ("now", "received_at", "sexes", "source_organization")

    def __init__(self, now: int, organization: str | None, sexes: list[RecordedSex]) -> None:
        self.now = now
        self.received_at: int | None = now
        self.source_organization = organization
        self.sexes = sexes

    def subject(self, reference: str) -> Subject | None:
        return None

    def sexes_elsewhere(self, patient: Mapping[str, Any]) -> list[RecordedSex]:
        return self.sexes


class QualityService:
    """Data quality on every write of ``repo``.

    ``ruleset`` is what runs while no region document is stored (default: the shipped
    library); ``identity`` (an :class:`~huitong.mpi.service.IdentityService`) lets the
    cross-institution rules see the same person's other records; ``config_file`` (setting
    ``HUITONG_QUALITY_CONFIG``) is stored as the region document at :meth:`install` when it
    differs from the one in force. Months are counted on a clock ``utc_offset_minutes`` ahead
    of UTC (China Standard Time by default).
    """

    def __init__(
        self,
        repo: Repository,
        *,
        clock: Clock,
        ruleset: RuleSet | None = None,
        identity: IdentityLinks | None = None,
        config_file: str | Path | None = None,
        utc_offset_minutes: int = _CHINA_STANDARD_TIME,
        reload_every_us: int = 5_000_000,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.identity = identity
        self.config_file = Path(config_file) if config_file else None
        self.utc_offset_minutes = utc_offset_minutes
        self.reload_every_us = reload_every_us
        self._base = ruleset or RuleSet.default()
        self._ruleset = self._base
        self._config_id = 0
        self._polled_at: int | None = None
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[Any, _TxState] = weakref.WeakKeyDictionary()
        # The month being counted and the clock range it covers: month_of builds a datetime,
        # which every write would otherwise pay for the same answer.
        self._month: tuple[int, int, str] = (0, -1, "")

    # -- set-up --------------------------------------------------------------------------
    def install(self) -> None:
        """Load the region configuration, then check every write. Install after the identity
        service, so a new Patient's golden record exists when its write hook runs."""
        if self.config_file is not None:
            self.load_config_file(self.config_file)
        self.reload()
        self.repo.add_write_check("quality", self._check)
        self.repo.add_write_hook("quality", sorted(resource_types()), self._after_write)
        self.repo.add_commit_hook("quality", self._flush)

    @property
    def ruleset(self) -> RuleSet:
        """The rules in force."""
        return self._ruleset

    def reload(self) -> RuleSet:
        """Apply the newest stored region document (or the base rules when none is)."""
        stored = latest_config(self.repo)
        with self._lock:
            if stored is None:
                self._ruleset, self._config_id = self._base, 0
            elif stored.id != self._config_id:
                self._ruleset, self._config_id = RuleSet.from_config(stored.document), stored.id
            self._polled_at = self.clock()
            return self._ruleset

    def config(self) -> StoredConfig | None:
        """The region document in force and who saved it when (None: shipped defaults)."""
        return latest_config(self.repo)

    def set_config(
        self, document: Mapping[str, Any], *, by: str, note: str | None = None
    ) -> RuleSet:
        """Validate ``document`` and make it the region's configuration. Raises
        :class:`~huitong.quality.config.QualityConfigError` listing every problem (nothing is
        stored then)."""
        ruleset = RuleSet.from_config(document)
        with self.repo.transaction() as tx:
            config_id = save_config(tx, document, saved_at=self.clock(), saved_by=by, note=note)
        with self._lock:
            self._ruleset, self._config_id = ruleset, config_id
        return ruleset

    def load_config_file(self, path: str | Path, *, by: str | None = None) -> bool:
        """Store the document in ``path`` (JSON or TOML) unless it is already in force;
        True when it was stored. Raises QualityConfigError for an invalid file."""
        document = load_config_file(path)
        current = latest_config(self.repo)
        if current is not None and current.document == dict(document):
            return False
        self.set_config(document, by=by or f"file:{Path(path).name}")
        return True

    def _maybe_reload(self, tx: Transaction, now: int) -> None:
        # Another server process may have stored a newer document: look every few seconds.
        if self._polled_at is not None and now - self._polled_at < self.reload_every_us:
            return
        self._polled_at = now
        if latest_config_id(tx) != self._config_id:
            self.reload()

    # -- the write path -------------------------------------------------------------------
    def _month_of(self, now: int) -> str:
        start, end, month = self._month
        if start <= now < end:
            return month
        month = month_of(now, self.utc_offset_minutes)
        # The month's bounds on the counting clock, found from the datetime of its first day.
        year, mon = int(month[:4]), int(month[5:7])
        first = _epoch_us(year, mon, self.utc_offset_minutes)
        after = _epoch_us(year + mon // 12, mon % 12 + 1, self.utc_offset_minutes)
        self._month = (first, after, month)
        return month

    def _state(self, tx: Transaction) -> _TxState:
        state = self._states.get(tx)
        if state is None:
            state = self._states[tx] = _TxState()
        return state

    def _check(self, tx: Transaction, content: dict[str, Any]) -> None:
        if content.get("resourceType") == "Patient" and _is_golden(content):
            return
        now = self.clock()
        self._maybe_reload(tx, now)
        ruleset = self._ruleset
        state = self._state(tx)
        ctx = RepositoryContext(tx, state.facts, now=now, identity=self.identity,
                                resource=content)  # fmt: skip
        assessment = assess(content, ctx, ruleset)
        error = rejection_error(assessment)
        if error is not None:
            raise error
        meta = content.get("meta") or {}
        source = meta.get("source")
        state.pending[assessment.resource_ref] = _Pending(
            assessment,
            int(meta.get("versionId") or 1),
            ctx.source_organization or UNKNOWN_ORGANIZATION,
            self._month_of(now),
            source if isinstance(source, str) else None,
            ruleset,
            now,
        )

    def _after_write(
        self, tx: Transaction, stored: StoredResource, content: dict[str, Any] | None
    ) -> None:
        if content is None:
            return
        state = self._state(tx)
        if stored.resource_type in ("Patient", "Encounter"):
            state.facts.remember(content)
        if stored.resource_type == "Patient" and _is_golden(content):
            self._check_sources_of(tx, state, content)
            return
        pending = state.pending.get(stored.reference)
        if pending is None or pending.version != stored.version_id or pending.stored:
            return
        if stored.resource_type != "Patient":
            del state.pending[stored.reference]
        # Patients stay (marked stored) until the transaction ends: their golden record may
        # be built after this hook, and the late check needs where and when they arrived.
        pending.stored = True
        self._persist(state, stored, pending, pending.assessment)

    def _persist(
        self, state: _TxState, stored: StoredResource, pending: _Pending, assessment: Assessment
    ) -> None:
        # Kept until the transaction ends: a statement per resource would flush the
        # store's buffered rows one resource at a time (see _flush).
        org, month = pending.organization, pending.month
        failed: set[str] | tuple[()] = ()
        if assessment.findings:
            reference, version = stored.reference, stored.version_id
            source, now = pending.source, pending.checked_at
            state.findings.extend(
                (f, reference, version, source, org, month, now) for f in assessment.findings
            )
            failed = {f.rule_id for f in assessment.findings}
        counts, rule = state.counts, pending.ruleset.rule
        for rule_id in assessment.applicable:
            slot = counts.get((org, month, rule_id))
            if slot is None:
                slot = counts[(org, month, rule_id)] = [rule(rule_id).category, 0, 0]
            slot[1] += 1
            if rule_id in failed:
                slot[2] += 1

    def _flush(self, tx: Transaction) -> None:
        """Write the transaction's findings and counters (commit hook): a few statements
        per transaction, whatever its size."""
        state = self._states.get(tx)
        if state is None or not (state.findings or state.counts):
            return
        record_finding_rows(tx, state.findings)
        counts = [CheckCount(org, month, rule_id, category, applicable, failed)
                  for (org, month, rule_id), (category, applicable, failed)
                  in state.counts.items()]  # fmt: skip
        for start in range(0, len(counts), 200):
            add_check_counts(tx, counts[start:start + 200])
        state.findings.clear()
        state.counts.clear()

    def _check_sources_of(self, tx: Transaction, state: _TxState, golden: dict[str, Any]) -> None:
        """The late cross-institution check of sources written in this transaction whose
        check could not yet see the person's other records."""
        ruleset = self._ruleset
        if CROSS_INSTITUTION_SEX_RULE not in ruleset:
            return
        rule = ruleset.rule(CROSS_INSTITUTION_SEX_RULE)
        if not rule.enabled:
            return
        sources = [
            link["other"]["reference"] for link in golden.get("link") or []
            if isinstance(link, dict) and isinstance(link.get("other"), dict)
            and isinstance(link["other"].get("reference"), str)
        ]  # fmt: skip
        single = RuleSet([rule])
        for ref in sources:
            pending = state.pending.get(ref)
            if pending is None or CROSS_INSTITUTION_SEX_RULE in pending.assessment.applicable:
                continue
            current = tx.read("Patient", ref.removeprefix("Patient/"))
            if current is None or current.deleted:
                continue
            patient = current.resource
            others = [s.removeprefix("Patient/") for s in sources if s != ref]
            org = None if pending.organization == UNKNOWN_ORGANIZATION else pending.organization
            ctx = _SexesFromGolden(self.clock(), org, recorded_sexes(tx, others, org))
            late = assess(patient, ctx, single)
            if not late.applicable:
                continue
            error = rejection_error(late)
            if error is not None:
                raise error
            merged = Assessment(
                late.resource_ref, (*pending.assessment.applicable, *late.applicable),
                (*pending.assessment.findings, *late.findings),
            )  # fmt: skip
            if pending.stored:
                self._persist(state, current, pending, late)
            pending.assessment = merged

    # -- reads -----------------------------------------------------------------------------
    def findings(self, query: FindingQuery) -> tuple[list[StoredFinding], int]:
        """A page of stored findings (newest first) and the total matching."""
        return search_findings(self.repo, query)

    def report(
        self,
        *,
        organization: str | None = None,
        month: str | None = None,
        trend_months: int = 6,
        worst: int = 10,
    ) -> QualityReport:
        """Scores from the stored counters, scoped to an institution and a month, with the
        trend of the months up to it."""
        return build_report(
            count_rows(self.repo, organization),
            generated_at=format_instant(self.clock()),
            rules=self._ruleset,
            organization=organization,
            month=month,
            worst=worst,
            trend_months=trend_months,
        )

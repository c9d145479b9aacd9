"""The data-quality engine in the write pipeline.

:meth:`QualityService.install` registers a write check and a write hook on the repository:

- the check assesses every resource about to be written against the rule set in force (the
  generated plan of its type, :mod:`huitong.quality.plan`); a *reject* finding raises the
  bilingual :class:`~huitong.fhir.errors.FhirError` (422 ``unprocessable``), so the whole
  transaction — a REST write, a transaction bundle, an HL7 v2 message, a file row — is
  refused and nothing of it is kept;
- the hook, after the write, confirms the resource version: its findings (already the rows
  to insert: plain tuples, no objects per finding) and its checks (one counter per
  institution × month × type × set of rules that applied) join the transaction's;
- the commit hook writes the transaction's findings in one statement (the rows as one JSON
  parameter) and its counters as one row of the counters' ledger (which the server folds
  into the totals in the background, :meth:`QualityService.fold_counts`); both are deferred
  statements that travel, on PostgreSQL, with the store's last flush.

Resource types no enabled rule names are not looked at (nothing to count or record); a
newer region document stored by another process is picked up by the next checked write
after ``reload_every_us``.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huitong.clock import Clock
from huitong.fhir.dates import format_instant
from huitong.fhir.definitions import resource_types
from huitong.quality.config import load_config_file
from huitong.quality.context import RecordedSex, Subject
from huitong.quality.engine import assess, plan_assessment, rejection_error
from huitong.quality.model import Assessment, Rule
from huitong.quality.plan import TypePlan
from huitong.quality.predicates import Facts
from huitong.quality.repository_context import (
    UNKNOWN_ORGANIZATION,
    IdentityLinks,
    RepositoryContext,
    TxFacts,
    recorded_sexes,
)
from huitong.quality.ruleset import RuleSet
from huitong.quality.scores import (
    QualityReport,
    build_report,
    month_of,
)
from huitong.quality.store import (
    FindingQuery,
    StoredConfig,
    StoredFinding,
    append_count_delta_rows,
    count_rows,
    fold_count_deltas,
    go_live_rows,
    insert_finding_rows,
    latest_config,
    latest_config_id,
    record_go_live,
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
_UNSET: Any = object()


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
    """A Patient's assessment, kept for the whole transaction: its golden record may be
    built after its write, and the late cross-institution check needs where and when it
    arrived (other types need nothing after their write hook)."""

    assessment: Assessment
    version: int
    organization: str
    month: str
    source: str | None
    ruleset: RuleSet
    checked_at: int  # the service's clock at the check: the findings' created_at
    stored: bool = False


# A checked resource waiting for its write hook: (content, counter key, finding rows).
_Checked = tuple[
    dict[str, Any], tuple[str, str, TypePlan, int], list[tuple[Any, ...]] | tuple[()]
]


class _TxState:
    """One transaction's quality bookkeeping, written at its end (see QualityService._flush)."""

    __slots__ = ("checked", "counts", "ctx", "evaluation", "facts", "go_live", "last", "live",
                 "month", "now", "pending", "rows")

    def __init__(
        self, tx: Transaction, identity: IdentityLinks | None, now: int, month: str
    ) -> None:
        # When the transaction's data reached the service: its resources' receipt time and
        # their findings' created_at. Read once per transaction (a bundle, a message, a file
        # row arrives whole), not once per resource: the clock takes a lock each time.
        self.now = now
        self.month = month  # the month the transaction's checks count in
        self.facts = TxFacts()
        # One context and one Facts, pointed at each resource in turn. The context reaches
        # the transaction through a weak proxy: this state is the value of a weak-keyed
        # dictionary, and a strong reference back to its key would keep both alive forever.
        self.ctx = RepositoryContext(weakref.proxy(tx), self.facts, now=0, identity=identity)
        self.evaluation = Facts({}, self.ctx)
        # The resource checked last, waiting for its write hook, which comes right after
        # the check (the store checks, writes, then runs the hooks). Should another check
        # come first (a hook writing a resource of its own), the earlier one waits in
        # ``checked``: id(content) → what its write hook confirms (the content itself is
        # kept too, so a reused id can never match).
        self.last: _Checked | None = None
        self.checked: dict[int, _Checked] = {}
        # Institution → when it went live, as this transaction uses it (looked up once).
        self.live: dict[str, int | None] = {}
        self.pending: dict[str, _Pending] = {}  # Patients, by reference
        # Finding rows, in the column order of store.insert_finding_rows.
        self.rows: list[tuple[Any, ...]] = []
        # (organization, month, plan, mask of the rules that applied) → resources: one
        # counter per resource, expanded to one per rule only at the end.
        self.counts: dict[tuple[str, str, TypePlan, int], int] = {}
        # Institutions whose first receipt this process has not yet seen committed → the
        # moment this transaction uses for it and records (again) at its end.
        self.go_live: dict[str, int] = {}


class _SexesFromGolden:
    """The context of the late cross-institution check: the other sources' sexes as read
    inside the writing transaction."""

    __slots__ = ("live_since", "now", "received_at", "sexes", "source_organization")

    def __init__(self, now: int, organization: str | None, sexes: list[RecordedSex]) -> None:
        self.now = now
        self.live_since: int | None = None
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
        self._single: tuple[Rule, RuleSet] | None = None  # see _single_rule_set
        # The rule set's plans by resource type (a dictionary lookup on every write).
        self._plans: dict[str, TypePlan | None] = {
            t: self._base.plan(t) for t in self._base.checked_types
        }
        # Types whose writes the hook looks at: every type a rule set in force has checked
        # (never fewer, so a write checked just before a change is still recorded), and the
        # Patients and Encounters later resources take their institution from.
        self._hooked: frozenset[str] = self._base.checked_types | {"Patient", "Encounter"}
        self._config_id = 0
        self._polled_at: int | None = None
        self._lock = threading.Lock()
        # The month being counted and the clock range it covers: month_of builds a datetime,
        # which every write would otherwise pay for the same answer.
        self._month: tuple[int, int, str] = (0, -1, "")
        # Institution → when its data first reached Huitong, as committed (never changes
        # once it is): the timeliness rules do not judge what happened before it.
        self._first_received: dict[str, int] = {}
        # Institutions first met by this process, with the moment it took for them, until a
        # read of the table (at most every reload_every_us) finds them committed; every
        # transaction using one records it again meanwhile (a first write rolled back
        # records nothing), and no transaction waits for a read of its own.
        self._provisional: dict[str, int] = {}
        self._go_live_read_at: int | None = None

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
                self._use(self._base, 0)
            elif stored.id != self._config_id:
                self._use(RuleSet.from_config(stored.document), stored.id)
            self._polled_at = self.clock()
            return self._ruleset

    def _use(self, ruleset: RuleSet, config_id: int) -> None:
        # Widen first: a write checked under the new rules must find its hook listening.
        self._hooked = self._hooked | ruleset.checked_types
        plans = {t: ruleset.plan(t) for t in ruleset.checked_types}
        self._ruleset, self._config_id, self._plans = ruleset, config_id, plans

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
            self._use(ruleset, config_id)
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
        # Kept in the transaction's own state (it goes with the transaction), under this
        # service: two services on one repository keep apart.
        state: _TxState | None = tx.state.get(self)
        return state if state is not None else self._begin(tx)

    def _begin(self, tx: Transaction) -> _TxState:
        """The state of a transaction's first checked write: its moment, its month, and the
        region document in force (looked for again every ``reload_every_us``; the moment is
        the transaction's, so one look a transaction is all a look per write would give)."""
        now = self.clock()
        if self._polled_at is None or now - self._polled_at >= self.reload_every_us:
            self._maybe_reload(tx, now)
        state = tx.state[self] = _TxState(tx, self.identity, now, self._month_of(now))
        return state

    def _check(self, tx: Transaction, content: dict[str, Any]) -> None:
        rtype = content.get("resourceType")
        if type(rtype) is not str:
            return  # validation has refused it already
        plan = self._plans.get(rtype)
        if plan is None:
            return  # no rule for this type: nothing to assess, count or record
        if rtype == "Patient" and _is_golden(content):
            return
        state: _TxState | None = tx.state.get(self)
        if state is None:
            state = self._begin(tx)
            plan = self._plans.get(rtype)  # the region document may have been read again
            if plan is None:
                return
        now = state.now
        ctx = state.ctx
        org = ctx.prepare(content, now) or UNKNOWN_ORGANIZATION
        live = state.live.get(org, _UNSET)
        if live is _UNSET:
            live = self._ruleset.live_since.get(org) if self._ruleset.live_since else None
            live = state.live[org] = live if live is not None else (
                self._first_received.get(org) or self._go_live(tx, state, org)
            )
        ctx.live_since = live
        facts = state.evaluation
        facts.reset(content, ctx, ctx.prepared_subject)
        mask, failures = (
            plan.run_valid(content, facts) if type(content) is dict
            else plan.run_reference(content, facts)
        )  # fmt: skip
        if failures and plan.reject and plan.rejects(failures):
            error = rejection_error(_assessment(plan, content, mask, failures))
            assert error is not None
            raise error
        month = state.month
        rows: list[tuple[Any, ...]] | tuple[()] = ()  # (most resources: no finding row)
        if failures or rtype == "Patient":
            meta = content.get("meta") or {}
            version = int(meta.get("versionId") or 1)
            source = meta.get("source")
            source = source if isinstance(source, str) else None
            if rtype == "Patient":
                state.pending[f"Patient/{content.get('id')}"] = _Pending(
                    _assessment(plan, content, mask, failures), version, org, month, source,
                    self._ruleset, now,
                )  # fmt: skip
                return
            reference = f"{rtype}/{content.get('id')}"
            heads = plan.heads
            found: list[tuple[Any, ...]] = []
            for i, outcome in failures:  # type: ignore[union-attr]
                en, zh = plan.messages(i, outcome)
                found.append((reference, version, *heads[i], outcome.expression, en, zh, source,
                              org, month, now))  # fmt: skip
            rows = found
        # The hook gets this very dict (so the version it stores is the one checked).
        last = state.last
        if last is not None:
            state.checked[id(last[0])] = last
        state.last = (content, (org, month, plan, mask), rows)

    def _go_live(self, tx: Transaction, state: _TxState, org: str) -> int:
        """When ``org`` went live, for an institution this process has not seen committed:
        its stored first receipt (the table is read when this process first needs it and
        then at most every ``reload_every_us``), else the moment this process took for it
        when its data first arrived here, recorded with the transaction."""
        found = state.go_live.get(org)
        if found is not None:
            return found
        now = state.now
        read_at = self._go_live_read_at
        if read_at is None or now - read_at >= self.reload_every_us:
            self._go_live_read_at = now
            stored = go_live_rows(self.repo)
            self._first_received.update(stored)
            for known in stored:
                self._provisional.pop(known, None)
            found = stored.get(org)
            if found is not None:
                return found
        found = state.go_live[org] = self._provisional.setdefault(org, now)
        return found

    def go_live(self) -> list[tuple[str, int, str]]:
        """Each institution's go-live moment as the timeliness rules use it, by institution:
        ``(organization, µs, "config")`` where the region document sets ``live_since``,
        else ``(organization, µs, "first-receipt")``."""
        found = {org: (at, "first-receipt") for org, at in go_live_rows(self.repo).items()}
        found.update((org, (at, "config")) for org, at in self._ruleset.live_since.items())
        return [(org, at, how) for org, (at, how) in sorted(found.items())]

    def _after_write(
        self, tx: Transaction, stored: StoredResource, content: dict[str, Any] | None
    ) -> None:
        rtype = stored.resource_type
        if content is None or rtype not in self._hooked:
            return
        state = self._state(tx)
        if rtype == "Patient" or rtype == "Encounter":
            state.facts.remember(content)
            if rtype == "Patient":
                self._patient_written(tx, state, stored, content)
                return
        checked = state.last
        if checked is not None and checked[0] is content:
            state.last = None
        else:
            checked = state.checked.pop(id(content), None) if state.checked else None
            if checked is None or checked[0] is not content:
                return
        key = checked[1]
        counts = state.counts
        counts[key] = counts.get(key, 0) + 1
        if checked[2]:
            state.rows += checked[2]

    def _patient_written(
        self, tx: Transaction, state: _TxState, stored: StoredResource, content: dict[str, Any]
    ) -> None:
        if _is_golden(content):
            self._check_sources_of(tx, state, content)
            return
        pending = state.pending.get(stored.reference)
        if pending is None or pending.version != stored.version_id or pending.stored:
            return
        # Patients stay (marked stored) until the transaction ends: their golden record may
        # be built after this hook, and the late check needs where and when they arrived.
        pending.stored = True
        self._persist(state, stored, pending, pending.assessment)

    def _persist(
        self, state: _TxState, stored: StoredResource, pending: _Pending, assessment: Assessment
    ) -> None:
        """Add a Patient's assessment (or its late cross-institution part) to the
        transaction's rows and counters."""
        org, month = pending.organization, pending.month
        reference, version = stored.reference, stored.version_id
        state.rows.extend(
            (reference, version, f.rule_id, f.category.value, f.severity.value, f.expression,
             f.message_en, f.message_zh, pending.source, org, month, pending.checked_at)
            for f in assessment.findings
        )  # fmt: skip
        plan = pending.ruleset.plan(stored.resource_type)
        if plan is None:
            return
        key = (org, month, plan, plan.mask_of(assessment.applicable))
        state.counts[key] = state.counts.get(key, 0) + 1

    def _flush(self, tx: Transaction) -> None:
        """Write the transaction's findings and counters (commit hook): one statement each
        on PostgreSQL, one per few hundred rows on SQLite, whatever the transaction's size."""
        state: _TxState | None = tx.state.get(self)
        if state is None:
            return
        if state.go_live:
            record_go_live(tx, list(state.go_live.items()))
            state.go_live.clear()
        if not (state.rows or state.counts):
            return
        if state.rows:
            insert_finding_rows(tx, state.rows, self.repo.dialect)
        # Each resource counted its set of applicable rules; spread them over the rules,
        # and add the failures (one per finding row of a rule). Rows, not CheckCounts: this
        # runs for every transaction, over every rule that applied.
        totals: dict[tuple[str, str, str], list[Any]] = {}
        for (org, month, plan, mask), n in state.counts.items():
            heads = plan.heads
            for i in plan.indices(mask):
                head = heads[i]
                key = (org, month, head[0])
                slot = totals.get(key)
                if slot is None:
                    totals[key] = [head[1], n, 0]
                else:
                    slot[1] += n
        for row in state.rows:
            key = (row[9], row[10], row[2])
            slot = totals.get(key)
            if slot is None:  # a late finding of a rule the plan no longer has
                totals[key] = [row[3], 1, 1]
            else:
                slot[2] += 1
        append_count_delta_rows(
            tx, [(*key, *slot) for key, slot in totals.items()]  # type: ignore[misc]
        )
        state.rows.clear()
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
        single: RuleSet | None = None
        for ref in sources:
            pending = state.pending.get(ref)
            if pending is None or CROSS_INSTITUTION_SEX_RULE in pending.assessment.applicable:
                continue
            current = tx.read("Patient", ref.removeprefix("Patient/"))
            if current is None or current.deleted:
                continue
            patient = current.resource
            if single is None:
                single = self._single_rule_set(rule)
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

    def _single_rule_set(self, rule: Rule) -> RuleSet:
        """The rule set of just ``rule``, built once per rule as configured: building one
        compiles its plan's generated code, and an HL7 v2 ADT message refreshes a golden
        record (and came here) every time."""
        kept = self._single
        if kept is None or kept[0] is not rule:
            kept = self._single = (rule, RuleSet([rule]))
        return kept[1]

    def fold_counts(self) -> int:
        """Fold the counters' ledger into the totals (the server does it in the background;
        reads are exact either way); the number of ledger rows folded."""
        return fold_count_deltas(self.repo)

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


def _assessment(
    plan: TypePlan, content: Mapping[str, Any], mask: int, failures: Any
) -> Assessment:
    """The :class:`Assessment` of one plan run (for rejections and Patients only: the
    write path keeps no objects per resource otherwise)."""
    ref = f"{content.get('resourceType')}/{content.get('id')}"
    return plan_assessment(plan, ref, mask, failures)

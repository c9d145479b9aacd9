"""Batch re-link: decide every source record again, after retraining or a rules change.

The write pipeline links one record at a time, in arrival order. After ``huitong mpi
train`` (new m/u, new thresholds) or an upgrade of the normalisers, the existing links were
made under the old model; :func:`relink` re-decides them all in one batch:

1. **Records.** The normalised records come from ``mpi_records`` (no Patient is re-read);
   ``renormalize=True`` rebuilds them from the source Patients instead (after a normaliser
   change, or to pick up Patients written while the index was off). Records and blocking
   keys that differ from the stored ones are rewritten.
2. **Blocking, vectorised.** Every (key, record) is hashed into numpy arrays, sorted, and
   cut into blocks; blocks larger than the online cap are skipped exactly as the online
   lookup skips them, and the pairs of each block size are generated in one numpy step.
3. **Scoring** each candidate pair under the current model (weights only; full evidence is
   computed for the pairs that end in a link or a review item).
4. **Decisions**, with the online rules applied in a fixed order (by source reference, so a
   re-run sees the same order and reaches the same result):

   - golden records an operator curated (any ``manual`` link: link, unlink, merge,
     accepted review) keep every source they have; automatic records may still join them;
   - a pair remembered as certainly-not, or a record and a golden record so marked, is
     never linked or proposed (a golden reference is expanded to its current sources);
   - exactly one certain golden whose best pair is corroborated (resident ID, phone or
     another identifier agrees) → linked automatically; certain but uncorroborated →
     review as probable and a golden record of its own; several certain → review each and
     a golden record of its own (an operator merges); probable/possible → review queue.
5. **Golden ids** are kept stable: a cluster keeps the golden id most of its members had;
   only clusters with no such id get a new one. Golden Patients whose membership changed
   are reassembled by survivorship (``rebuild_all=True`` reassembles every one).

A second run over unchanged data finds nothing to change. ``dry_run=True`` plans and
reports without writing. Run it in a quiet window: records written during a run are
decided online as usual and the next run includes them.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson

from huitong.fhir.errors import FhirError
from huitong.mpi.blocking import index_keys
from huitong.mpi.codec import record_from_json, record_to_json
from huitong.mpi.model import MatchModel, explain, probability_of, score_pair
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.service import (
    _MAX_BLOCK,
    GOLDEN_TAG,
    SYSTEM_ACTOR,
    IdentityService,
    _corroborated_evidence,
    _org_of,
)

__all__ = ["Progress", "RelinkSummary", "block_pairs", "relink"]

Progress = Callable[[str, int, int], None]
_CHUNK = 500  # sources per transaction when applying: small enough to keep locks short


@dataclass(slots=True)
class RelinkSummary:
    """What a re-link did (or, with ``dry_run``, would do)."""

    records: int = 0
    pairs: int = 0
    pinned: int = 0  # sources in operator-curated golden records, kept where they are
    records_rewritten: int = 0  # stored normalised record or blocking keys changed
    links_made: int = 0  # sources now linked to a golden record they were not linked to
    links_removed: int = 0  # sources taken out of the golden record they were in
    goldens_created: int = 0
    goldens_retired: int = 0
    goldens_rebuilt: int = 0
    queued: int = 0  # new review items
    superseded: int = 0  # open review items no longer proposed
    dry_run: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(
            (
                self.records_rewritten,
                self.links_made,
                self.links_removed,
                self.goldens_created,
                self.goldens_retired,
                self.queued,
                self.superseded,
            )
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"changed": self.changed}

    def lines(self) -> list[str]:
        """The bilingual summary a person reads."""
        s = self
        verb = (
            ("Would change (dry run)", "将会变更（试运行）") if s.dry_run else ("Changed", "已变更")
        )
        return [
            f"Records: {s.records:,}; candidate pairs scored: {s.pairs:,}; kept by operators: "
            f"{s.pinned:,}",
            f"记录：{s.records:,}；评分候选对：{s.pairs:,}；操作员确认保留：{s.pinned:,}",
            f"{verb[0]}: links made {s.links_made:,}, links removed {s.links_removed:,}, "
            f"golden records created {s.goldens_created:,}, retired {s.goldens_retired:,}, "
            f"rebuilt {s.goldens_rebuilt:,}; review items queued {s.queued:,}, superseded "
            f"{s.superseded:,}; records re-indexed {s.records_rewritten:,}",
            f"{verb[1]}：新建关联 {s.links_made:,}，解除关联 {s.links_removed:,}，"
            f"新建主索引记录 {s.goldens_created:,}，撤销 {s.goldens_retired:,}，"
            f"重建 {s.goldens_rebuilt:,}；新增待审核 {s.queued:,}，作废待审核 {s.superseded:,}；"
            f"重建索引的记录 {s.records_rewritten:,}",
            "Nothing to change. / 无需变更。" if not s.changed else "",
        ]


def _noop(stage: str, done: int, total: int) -> None:
    return None


# -- blocking ---------------------------------------------------------------------------


def block_pairs(
    keys: Sequence[Sequence[str]], *, max_block: int = _MAX_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j``, of records sharing a blocking key, as two arrays.

    ``keys[i]`` are record ``i``'s keys. Blocks with more than ``max_block`` records are
    skipped (the online lookup skips them too). Keys are compared by 64-bit hash: a
    collision only adds a pair to score, never loses one.
    """
    counts = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))
    owners = np.repeat(np.arange(len(keys), dtype=np.int64), counts)
    hashes = np.fromiter(
        (hash(k) for ks in keys for k in ks), dtype=np.int64, count=int(counts.sum())
    )
    order = np.argsort(hashes, kind="stable")
    hashes, owners = hashes[order], owners[order]
    if len(hashes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    cuts = np.flatnonzero(np.diff(hashes)) + 1
    starts = np.concatenate(([0], cuts))
    sizes = np.diff(np.concatenate((starts, [len(hashes)])))
    codes = []
    n = max(len(keys), 1)
    for size in range(2, max_block + 1):
        firsts = starts[sizes == size]
        if len(firsts) == 0:
            continue
        members = owners[firsts[:, None] + np.arange(size)]
        iu, ju = np.triu_indices(size, 1)
        a, b = members[:, iu].ravel(), members[:, ju].ravel()
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keep = lo != hi
        codes.append(lo[keep] * n + hi[keep])
    if not codes:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    unique = np.unique(np.concatenate(codes))
    return unique // n, unique % n


# -- scoring ----------------------------------------------------------------------------


def _scorer(
    model: MatchModel[IdentityRecord],
) -> Callable[[IdentityRecord, IdentityRecord], tuple[float, str]]:
    """Probability and grade of a pair without building the evidence (the batch hot path);
    the same arithmetic as :func:`huitong.mpi.model.score_pair`."""
    comparisons = list(zip(model.spec.comparisons, model.params, strict=True))
    rules = model.spec.rules
    prior = model.prior_weight
    grade = model.thresholds.grade

    def score(a: IdentityRecord, b: IdentityRecord) -> tuple[float, str]:
        total = prior
        levels: dict[str, str | None] = {}
        for comparison, params in comparisons:
            level = comparison.level_of(a, b)
            if level is None:
                levels[comparison.name] = None
                continue
            tf_value = comparison.tf_value(a) if comparison.tf_value and level == 0 else None
            total += params.weight(level, tf_value)[0]
            levels[comparison.name] = params.levels[level]
        for rule in rules:
            if rule.applies(levels):
                return 1.0, "certain"
        p = probability_of(total)
        return p, grade(p)

    return score


# -- the plan -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Review:
    source: str
    cluster: int
    matched: str
    grade: str
    probability: float
    evidence: dict[str, Any]


@dataclass(slots=True)
class _Plan:
    records: list[IdentityRecord]
    cluster_of: list[int]
    cluster_golden: list[str | None]  # None: needs a new id
    reasons: dict[int, str]
    reviews: list[_Review]
    pinned: set[str]
    current: dict[str, tuple[str, str]]  # source -> (golden, grade)
    pairs: int


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load_records(
    service: IdentityService, renormalize: bool, progress: Progress
) -> tuple[list[IdentityRecord], dict[str, str]]:
    """Every source record, sorted by reference, and the stored JSON that must be
    (re)written (source -> JSON)."""
    repo = service.repo
    stored = {s: t for s, t in repo.query("SELECT source, record FROM mpi_records")}
    to_write: dict[str, str] = {}
    records: list[IdentityRecord] = []
    if renormalize:
        from huitong.fhir.search.parse import parse_search
        from huitong.store.repository import iter_pages

        query = parse_search(
            "Patient", [("_tag:not", f"{GOLDEN_TAG['system']}|golden"), ("_count", "1000")]
        )
        for n, found in enumerate(iter_pages(repo, query)):
            record = record_from_patient(found.resource, source_org=_org_of(found.resource))
            text = record_to_json(record)
            if stored.get(record.source) != text:
                to_write[record.source] = text
            records.append(record)
            if n % 1000 == 0:
                progress("normalise", n, 0)
    else:
        total = len(stored)
        for n, text in enumerate(stored.values()):
            records.append(record_from_json(text))
            if n % 20000 == 0:
                progress("read", n, total)
        # Sources linked before mpi_records existed: normalise their Patient once.
        missing = [s for (s,) in repo.query("SELECT source FROM mpi_sources") if s not in stored]
        for source in missing:
            try:
                found = repo.read("Patient", source.removeprefix("Patient/"))
            except FhirError:
                continue
            record = record_from_patient(found.resource, source_org=_org_of(found.resource))
            to_write[source] = record_to_json(record)
            records.append(record)
    records.sort(key=lambda r: r.source)
    return records, to_write


def _stored_keys(service: IdentityService) -> dict[str, str]:
    """Each source's stored blocking keys, sorted and joined by newlines."""
    if service.repo.dialect == "postgresql":
        sql = "SELECT source, string_agg(key, E'\\n' ORDER BY key) FROM mpi_keys GROUP BY source"
    else:
        sql = (
            "SELECT source, group_concat(key, char(10)) FROM (SELECT source, key FROM "
            "mpi_keys ORDER BY source, key) GROUP BY source"
        )
    return {s: k for s, k in service.repo.query(sql)}


def _not_partners(
    service: IdentityService, members: dict[str, list[str]]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Certainly-not memory as source → sources and source → golden ids; a golden reference
    stands for the sources it has now."""
    partners: dict[str, set[str]] = defaultdict(set)
    goldens: dict[str, set[str]] = defaultdict(set)

    def expand(ref: str) -> list[str]:
        gid = ref.removeprefix("Patient/")
        return members.get(gid, []) or [ref]

    for a, b in service.repo.query("SELECT a, b FROM mpi_certainly_not"):
        for x, y in ((a, b), (b, a)):
            if y.removeprefix("Patient/") in members:
                goldens[x].add(y.removeprefix("Patient/"))
            for sx in expand(x):
                for sy in expand(y):
                    if sx != sy:
                        partners[sx].add(sy)
    return partners, goldens


def _plan(
    service: IdentityService,
    records: list[IdentityRecord],
    keys: list[list[str]],
    progress: Progress,
    summary: RelinkSummary,
    scored: Iterable[tuple[str, str, float, str]] | None = None,
) -> _Plan:
    model = service.model
    current = {
        s: (g, gr)
        for s, g, gr in service.repo.query("SELECT source, golden, grade FROM mpi_sources")
    }
    members: dict[str, list[str]] = defaultdict(list)
    for s, (g, _gr) in current.items():
        members[g].append(s)
    curated = {g for g, gr in current.values() if gr == "manual"}
    pinned = {s for g in curated for s in members[g]}
    partners, not_goldens = _not_partners(service, members)

    index = {r.source: i for i, r in enumerate(records)}
    t0 = time.perf_counter()
    given: dict[tuple[int, int], tuple[float, str]] = {}
    if scored is None:
        lo, hi = block_pairs(keys)
    else:
        # Pairs blocked and scored elsewhere (Spark): the same decisions are made from them.
        for a, b, p, grade in scored:
            if a in index and b in index and a != b:
                i, j = sorted((index[a], index[b]))
                given[(i, j)] = (float(p), grade)
        pairs = sorted(given)
        lo = np.array([i for i, _ in pairs], dtype=np.int64)
        hi = np.array([j for _, j in pairs], dtype=np.int64)
    summary.seconds["block"] = round(time.perf_counter() - t0, 2)
    index_pinned = np.fromiter(
        (r.source in pinned for r in records), dtype=bool, count=len(records)
    )
    # An edge belongs to the record that decides it: the automatic one of the two, or the
    # later one in the fixed order when both are automatic. Pairs of two pinned records
    # are an operator's business.
    keep = ~(index_pinned[lo] & index_pinned[hi])
    lo, hi = lo[keep], hi[keep]
    decider = np.where(index_pinned[hi], lo, hi)
    other = np.where(index_pinned[hi], hi, lo)
    order = np.argsort(decider, kind="stable")
    decider, other = decider[order], other[order]
    summary.pairs = len(decider)

    t0 = time.perf_counter()
    score = _scorer(model)
    edges: dict[int, list[tuple[int, float, str]]] = defaultdict(list)
    total = len(decider)
    for n, (d, o) in enumerate(zip(decider.tolist(), other.tolist(), strict=True)):
        if given:
            p, grade = given[(d, o) if d < o else (o, d)]
        else:
            p, grade = score(records[d], records[o])
        if grade != "certainly-not":
            edges[d].append((o, p, grade))
        if n % 20000 == 0:
            progress("score", n, total)
    progress("score", total, total)
    summary.seconds["score"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    cluster_of = [-1] * len(records)
    cluster_golden: list[str | None] = []
    cluster_members: list[list[int]] = []
    for golden in sorted(curated):
        c = len(cluster_golden)
        cluster_golden.append(golden)
        cluster_members.append([])
        for s in sorted(members[golden]):
            if s in index:
                cluster_of[index[s]] = c
                cluster_members[c].append(index[s])
    reasons: dict[int, str] = {}
    reviews: list[_Review] = []

    def new_cluster(i: int) -> None:
        cluster_of[i] = len(cluster_golden)
        cluster_golden.append(None)
        cluster_members.append([i])

    for i, record in enumerate(records):
        if record.source in pinned:
            continue
        mine = partners.get(record.source, set())
        forbidden = {cluster_of[index[p]] for p in mine if p in index} - {-1}
        not_g = not_goldens.get(record.source, set())
        best: dict[int, tuple[float, int, str]] = {}
        for o, p, grade in edges.get(i, ()):
            c = cluster_of[o]
            if c < 0 or c in forbidden or records[o].source in mine:
                continue
            if cluster_golden[c] is not None and cluster_golden[c] in not_g:
                continue
            if c not in best or p > best[c][0]:
                best[c] = (p, o, grade)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        certain = [(c, v) for c, v in ranked if v[2] == "certain"]
        if len(certain) == 1:
            c, (_p, o, _g) = certain[0]
            evidence = explain(score_pair(model, record, records[o]))
            if _corroborated_evidence(evidence):
                cluster_of[i] = c
                cluster_members[c].append(i)
                reasons[i] = f"relink: certain match with {records[o].source}"
                continue
            reviews.append(
                _Review(
                    record.source,
                    c,
                    records[o].source,
                    "probable",
                    evidence["probability"],
                    evidence,
                )
            )
            new_cluster(i)
            reasons[i] = "relink: certain but uncorroborated match, new golden record"
            continue
        for c, (_p, o, _g) in ranked:
            evidence = explain(score_pair(model, record, records[o]))
            reviews.append(
                _Review(
                    record.source,
                    c,
                    records[o].source,
                    evidence["grade"],
                    evidence["probability"],
                    evidence,
                )
            )
        new_cluster(i)
        reasons[i] = "relink: no certain match, new golden record"
        if i % 20000 == 0:
            progress("decide", i, len(records))

    # Stable golden ids: a cluster keeps the id most of its members already had.
    taken = set(curated)
    for c, golden in enumerate(cluster_golden):
        if golden is not None:
            continue
        votes = Counter(
            current[records[i].source][0]
            for i in cluster_members[c]
            if records[i].source in current
        )
        for gid, _n in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
            if gid not in taken:
                cluster_golden[c] = gid
                taken.add(gid)
                break
    summary.seconds["decide"] = round(time.perf_counter() - t0, 2)
    summary.pinned = len(pinned)
    return _Plan(
        records, cluster_of, cluster_golden, reasons, reviews, pinned, current, summary.pairs
    )


# -- applying -----------------------------------------------------------------------------


def relink(
    service: IdentityService,
    *,
    dry_run: bool = False,
    renormalize: bool = False,
    rebuild_all: bool = False,
    progress: Progress | None = None,
    scored: Iterable[tuple[str, str, float, str]] | None = None,
) -> RelinkSummary:
    """Re-decide every source record's link (see the module docstring).

    ``scored`` supplies the candidate pairs as ``(source, source, probability, grade)``
    from an external engine (the Spark path in docs/mpi.md) instead of blocking and
    scoring here; the decisions, link-state rules and writes are the same."""
    progress = progress or _noop
    summary = RelinkSummary(dry_run=dry_run)
    started = time.perf_counter()
    t0 = started
    records, to_write = _load_records(service, renormalize, progress)
    summary.records = len(records)
    summary.seconds["load"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    stored_keys = _stored_keys(service)
    keys: list[list[str]] = []
    rekey: list[int] = []
    for i, r in enumerate(records):
        every = sorted(index_keys(r))
        # search keys (nm:) are stored beside the blocking keys but never block
        keys.append([k for k in every if not k.startswith("nm:")])
        stored = stored_keys.get(r.source, "")
        # compare as sets: the database's collation need not order keys as Python does
        if r.source in to_write or (
            stored != "\n".join(every) and sorted(stored.split("\n")) != every
        ):
            rekey.append(i)
        if i % 20000 == 0:
            progress("keys", i, len(records))
    del stored_keys
    summary.records_rewritten = len(rekey)
    summary.seconds["keys"] = round(time.perf_counter() - t0, 2)

    plan = _plan(service, records, keys, progress, summary, scored)

    # Desired state per automatic source; golden ids for new clusters are drawn only when
    # writing (a dry run must not consume ids).
    new_ids: dict[int, str] = {}

    def golden_of_cluster(c: int) -> str:
        gid = plan.cluster_golden[c]
        if gid is not None:
            return gid
        if c not in new_ids:
            new_ids[c] = f"(new {c})" if dry_run else service.new_id()
        return new_ids[c]

    moves: list[tuple[str, str | None, str, str, str]] = []  # source, old, new, org, reason
    for i, record in enumerate(records):
        if record.source in plan.pinned:
            continue
        c = plan.cluster_of[i]
        old = plan.current.get(record.source)
        new_golden = plan.cluster_golden[c]
        if old is not None and new_golden is not None and old[0] == new_golden:
            continue
        moves.append(
            (
                record.source,
                old[0] if old else None,
                golden_of_cluster(c),
                record.source_org,
                plan.reasons.get(i, "relink"),
            )
        )
    summary.links_made = len(moves)
    summary.links_removed = sum(1 for m in moves if m[1] is not None)
    summary.goldens_created = len(new_ids)
    old_goldens = {g for g, _gr in plan.current.values()}
    new_goldens = {golden_of_cluster(c) for c in set(plan.cluster_of) if c >= 0}
    summary.goldens_retired = len(old_goldens - new_goldens)

    desired_reviews = {(r.source, golden_of_cluster(r.cluster)): r for r in plan.reviews}
    open_items = service.repo.query(
        "SELECT id, source, golden FROM mpi_review WHERE status = 'open'"
    )
    existing = {(s, g): int(i) for i, s, g in open_items}
    stale = [
        i
        for (s, g), i in existing.items()
        if (s, g) not in desired_reviews and s not in plan.pinned
    ]
    fresh = [r for k, r in desired_reviews.items() if k not in existing]
    summary.queued, summary.superseded = len(fresh), len(stale)
    touched = {g for _s, old, new, _o, _r in moves for g in (old, new) if g}
    summary.goldens_rebuilt = len(new_goldens if rebuild_all else touched)
    if dry_run:
        summary.seconds["total"] = round(time.perf_counter() - started, 2)
        return summary

    t0 = time.perf_counter()
    _rewrite_records(
        service, [records[i] for i in rekey], [keys[i] for i in rekey], to_write, progress
    )
    summary.seconds["write_keys"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    _apply_moves(service, moves, progress)
    if rebuild_all:
        others = sorted(new_goldens - touched)
        for n, chunk in enumerate(_chunks(others)):
            with service.repo.transaction() as tx:
                for g in chunk:
                    service._refresh_golden(tx, g)
            progress("rebuild", n * _CHUNK, len(others))
    summary.seconds["write_links"] = round(time.perf_counter() - t0, 2)

    now = service.clock()
    with service.repo.transaction() as tx:
        for chunk in _chunks(stale):
            marks = ", ".join("?" * len(chunk))
            tx.execute(
                f"UPDATE mpi_review SET status = 'superseded', decided_at = ?, "
                f"decided_by = ?, reason = ? WHERE id IN ({marks})",
                (now, SYSTEM_ACTOR, "relink: no longer proposed", *chunk),
            )
        for chunk in _chunks(fresh):
            rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            tx.execute(
                "INSERT INTO mpi_review (source, golden, matched_source, grade, probability, "
                f"evidence, status, created_at) VALUES {rows}",
                [
                    v
                    for r in chunk
                    for v in (
                        r.source,
                        golden_of_cluster(r.cluster),
                        r.matched,
                        r.grade,
                        float(r.probability),
                        orjson.dumps(r.evidence).decode(),
                        "open",
                        now,
                    )
                ],
            )
    summary.seconds["total"] = round(time.perf_counter() - started, 2)
    return summary


def _rewrite_records(
    service: IdentityService,
    records: list[IdentityRecord],
    keys: list[list[str]],
    texts: dict[str, str],
    progress: Progress,
) -> None:
    for n, chunk in enumerate(_chunks(list(range(len(records))))):
        with service.repo.transaction() as tx:
            sources = [records[i].source for i in chunk]
            marks = ", ".join("?" * len(sources))
            tx.execute(f"DELETE FROM mpi_keys WHERE source IN ({marks})", sources)
            tx.execute(f"DELETE FROM mpi_records WHERE source IN ({marks})", sources)
            rows = [(k, records[i].source) for i in chunk for k in sorted(index_keys(records[i]))]
            for part in _chunks(rows):
                tx.execute(
                    "INSERT INTO mpi_keys (key, source) VALUES "
                    + ", ".join(["(?, ?)"] * len(part)),
                    [v for r in part for v in r],
                )
            recs = [
                (records[i].source, texts.get(records[i].source) or record_to_json(records[i]))
                for i in chunk
            ]
            tx.execute(
                "INSERT INTO mpi_records (source, record) VALUES "
                + ", ".join(["(?, ?)"] * len(recs)),
                [v for r in recs for v in r],
            )
        progress("write", n * _CHUNK, len(records))


def _apply_moves(
    service: IdentityService,
    moves: list[tuple[str, str | None, str, str, str]],
    progress: Progress,
) -> None:
    """Links and the golden records they touch, a chunk per transaction: after each commit
    every golden Patient agrees with its links (an interrupted run is finished by the next)."""
    moves = sorted(moves, key=lambda m: (m[2], m[0]))
    for n, chunk in enumerate(_chunks(moves)):
        with service.repo.transaction() as tx:
            touched: set[str] = set()
            for source, old, new, org, reason in chunk:
                service._link(
                    tx, source, org, new, "certain", SYSTEM_ACTOR, reason, settle_reviews=False
                )
                touched.add(new)
                if old:
                    touched.add(old)
            for golden in sorted(touched):
                service._refresh_golden(tx, golden)
        progress("link", n * _CHUNK, len(moves))

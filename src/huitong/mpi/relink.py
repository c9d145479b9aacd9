"""Batch re-link: decide every source record again, after retraining or a rules change.

The write pipeline links one record at a time, in arrival order. After ``huitong mpi
train`` (new m/u, new thresholds) or an upgrade of the normalisers, the existing links were
made under the old model; :func:`relink` re-decides them all in one batch, built to run a
million records in minutes on a small machine without holding them all in memory:

1. **Records.** The source references come from ``mpi_records`` (read by keyset pages;
   no record is decoded yet). ``renormalize=True`` rebuilds the records from the source
   Patients instead (after a normaliser change, or to pick up Patients written while the
   index was off); sources linked before ``mpi_records`` existed are normalised once.
2. **Blocking.** While ``mpi_state.key_scheme`` says the stored keys were written by the
   running key functions (:data:`huitong.mpi.blocking.KEY_SCHEME`), the blocks come
   straight from ``mpi_keys``, grouped in the database (an index-only scan of
   ``(key, source)``; blocks larger than the online cap are skipped exactly as the online
   lookup skips them). Otherwise every record is decoded, its keys recomputed and those that
   differ rewritten. The pairs of each block size are generated in one numpy step.
3. **Components.** Pairs, operator-curated golden records and certainly-not decisions
   join records into connected components (numpy union by pointer jumping). A decision
   depends only on records of its own component, so components are decoded, scored and
   decided a batch at a time and then dropped; records in no pair are decided without
   being decoded at all.
4. **Scoring** each candidate pair under the current model (weight, grade and whether a
   corroborating field agrees; full evidence only for pairs that become review items).
5. **Decisions**, with the online rules applied in a fixed order (by source reference, so a
   re-run sees the same order and reaches the same result):

   - golden records an operator curated (any ``manual`` link: link, unlink, merge,
     accepted review) keep every source they have; automatic records may still join them;
   - a pair remembered as certainly-not, or a record and a golden record so marked, is
     never linked or proposed (a golden reference is expanded to its current sources);
   - exactly one certain golden whose best pair is corroborated (resident ID, phone or
     another identifier agrees) → linked automatically; certain but uncorroborated →
     review as probable and a golden record of its own; several certain → review each and
     a golden record of its own (an operator merges); probable/possible → review queue.
6. **Golden ids** are kept stable: a cluster keeps the golden id most of its members had;
   only clusters with no such id get a new one. Golden Patients whose membership changed
   are reassembled by survivorship (``rebuild_all=True`` reassembles every one).
7. **Writes** are set-based: links and their history as multi-row statements; moves are
   grouped so that every golden record they touch is rebuilt once, in the transaction that
   changes its links (its sources and the golden Patients read with one query per
   thousand); review items inserted and superseded in bulk. After each commit every golden
   Patient agrees with its links, so an interrupted run is finished by the next.

A second run over unchanged data finds nothing to change. ``dry_run=True`` plans and
reports without writing. Run it in a quiet window: records written during a run are
decided online as usual and the next run includes them.
"""

from __future__ import annotations

import os
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson

from huitong.fhir.errors import FhirError
from huitong.mpi.blocking import KEY_SCHEME, index_keys
from huitong.mpi.codec import record_from_json, record_to_json
from huitong.mpi.model import MatchModel, explain, probability_of, score_pair
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.service import (
    _CORROBORATING,
    _MAX_BLOCK,
    GOLDEN_TAG,
    SYSTEM_ACTOR,
    IdentityService,
    _org_of,
)
from huitong.store.repository import Repository

__all__ = ["Progress", "RelinkSummary", "block_pairs", "components", "relink"]

Progress = Callable[[str, int, int], None]
_PAGE = 20_000  # rows per keyset page
_BATCH = 20_000  # records decoded and decided together (whole components)
_CHUNK = 500  # rows per multi-row statement: well inside both engines' parameter limits
_FETCH = 1_000  # references per IN (...) lookup
_GOLDENS_PER_TX = 1_000  # golden records rebuilt per write transaction: short locks
_WRITERS = 4  # write transactions at once on PostgreSQL (disjoint rows)


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


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- reading ------------------------------------------------------------------------------


def _pages(
    repo: Repository, select: str, table: str, order: str, tail: str = "",
    params: Sequence[Any] = (), page: int = _PAGE,
) -> Iterator[list[tuple[Any, ...]]]:
    """``SELECT order, select FROM table`` in pages by keyset on ``order`` (an indexed
    column): a million rows without a million-row result in memory. ``tail`` goes after the
    keyset condition (more conditions, GROUP BY, HAVING) with ``params``."""
    last = ""
    columns = f"{order}, {select}" if select else order
    while True:
        rows = repo.query(
            f"SELECT {columns} FROM {table} WHERE {order} > ? {tail} ORDER BY {order} "
            f"LIMIT {page}",
            (last, *params),
        )
        if rows:
            yield rows
        if len(rows) < page:
            return
        last = rows[-1][0]


def _fetch(repo: Repository, sql: str, refs: Sequence[str]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (ending in ``IN``) for ``refs``, a thousand references per query."""
    out: list[tuple[Any, ...]] = []
    for chunk in _chunks(refs, _FETCH):
        out.extend(repo.query(f"{sql} ({', '.join('?' * len(chunk))})", tuple(chunk)))
    return out


@dataclass(slots=True)
class _Index:
    """Every source record of the run by position (sources sorted by reference), with its
    current link as numpy arrays, golden ids as codes in string order."""

    sources: list[str]
    index: dict[str, int]
    overlay: dict[str, str]  # normalised record JSON to (re)write: renormalised or legacy
    golden_ids: list[str]  # code -> golden id, sorted
    golden_code: dict[str, int]
    current: np.ndarray  # per record: code of its golden, -1 when not linked
    orgs: list[str]  # per record: source organisation as linked ("" if unknown)
    curated: np.ndarray  # per golden code: an operator curated it (a manual link)
    orphan_goldens: set[int]  # goldens of linked sources that are not in the run


def _read_index(
    service: IdentityService, renormalize: bool, progress: Progress
) -> _Index:
    repo = service.repo
    linked: dict[str, tuple[str, str]] = {}
    intern: dict[str, str] = {}
    manual: set[str] = set()
    for rows in _pages(repo, "golden, grade, source_org", "mpi_sources", "source"):
        for source, golden, grade, org in rows:
            golden = intern.setdefault(golden, golden)
            linked[source] = (golden, intern.setdefault(org or "", org or ""))
            if grade == "manual":
                manual.add(golden)
        progress("read", len(linked), 0)
    overlay: dict[str, str] = {}
    universe: list[str] = []
    if renormalize:
        from huitong.fhir.search.parse import parse_search
        from huitong.store.repository import iter_pages

        query = parse_search(
            "Patient", [("_tag:not", f"{GOLDEN_TAG['system']}|golden"), ("_count", "1000")]
        )
        batch: list[IdentityRecord] = []

        def settle(batch: list[IdentityRecord]) -> None:
            stored = dict(
                _fetch(repo, "SELECT source, record FROM mpi_records WHERE source IN",
                       [r.source for r in batch])
            )  # fmt: skip
            for record in batch:
                text = record_to_json(record)
                if stored.get(record.source) != text:
                    overlay[record.source] = text
                universe.append(record.source)

        for found in iter_pages(repo, query):
            batch.append(record_from_patient(found.resource, source_org=_org_of(found.resource)))
            if len(batch) == _FETCH:
                settle(batch)
                batch = []
                progress("normalise", len(universe), 0)
        settle(batch)
    else:
        universe = [row[0] for rows in _pages(repo, "", "mpi_records", "source") for row in rows]
        have = set(universe)
        # Sources linked before mpi_records existed: normalise their Patient once.
        for source in [s for s in linked if s not in have]:
            try:
                found = repo.read("Patient", source.removeprefix("Patient/"))
            except FhirError:
                continue
            record = record_from_patient(found.resource, source_org=_org_of(found.resource))
            overlay[source] = record_to_json(record)
            universe.append(source)
        del have
    sources = sorted(set(universe))
    universe.clear()
    index = {s: i for i, s in enumerate(sources)}
    golden_ids = sorted(intern[g] for g in {g for g, _o in linked.values()})
    golden_code = {g: c for c, g in enumerate(golden_ids)}
    current = np.full(len(sources), -1, dtype=np.int64)
    orgs = [""] * len(sources)
    orphan_goldens: set[int] = set()
    for source, (golden, org) in linked.items():
        i = index.get(source)
        if i is None:
            orphan_goldens.add(golden_code[golden])
            continue
        current[i] = golden_code[golden]
        orgs[i] = org
    curated = np.zeros(len(golden_ids), dtype=bool)
    for golden in manual:
        curated[golden_code[golden]] = True
    return _Index(sources, index, overlay, golden_ids, golden_code, current, orgs, curated,
                  orphan_goldens)  # fmt: skip


# -- blocking ---------------------------------------------------------------------------


def _group_pairs(
    owners: np.ndarray, starts: np.ndarray, sizes: np.ndarray, n: int, max_block: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unique pairs ``(i, j)``, ``i < j``, within groups ``owners[starts[g]:+sizes[g]]``;
    groups of one or of more than ``max_block`` members make none."""
    codes = []
    n = max(n, 1)
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


def _hash_pairs(
    hashes: np.ndarray, owners: np.ndarray, n: int, max_block: int
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(hashes, kind="stable")
    hashes, owners = hashes[order], owners[order]
    if len(hashes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.concatenate(([0], np.flatnonzero(np.diff(hashes)) + 1))
    sizes = np.diff(np.concatenate((starts, [len(hashes)])))
    return _group_pairs(owners, starts, sizes, n, max_block)


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
    return _hash_pairs(hashes, owners, len(keys), max_block)


def _stored_block_pairs(
    repo: Repository, index: dict[str, int], max_block: int, progress: Progress
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs from the stored blocking keys, grouped by the database: only blocks of 2 to
    ``max_block`` sources come back, as one row each (search-only ``nm:`` keys left out)."""
    agg = (
        "string_agg(source, chr(10))" if repo.dialect == "postgresql"
        else "group_concat(source, char(10))"
    )  # fmt: skip
    owners = array("q")
    sizes = array("q")
    blocks = 0
    for rows in _pages(
        repo, agg, "mpi_keys", "key",
        tail=f"AND key NOT LIKE ? GROUP BY key HAVING COUNT(*) BETWEEN 2 AND {max_block}",
        params=("nm:%",),
    ):  # fmt: skip
        for _key, members in rows:
            known = [index[s] for s in members.split("\n") if s in index]
            if len(known) > 1:
                owners.extend(known)
                sizes.append(len(known))
        blocks += len(rows)
        progress("block", blocks, 0)
    size_arr = np.frombuffer(sizes, dtype=np.int64) if sizes else np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(size_arr)[:-1])).astype(np.int64)
    owner_arr = np.frombuffer(owners, dtype=np.int64) if owners else np.zeros(0, np.int64)
    return _group_pairs(owner_arr, starts, size_arr, len(index), max_block)


def components(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Connected components of the graph on ``n`` nodes with edges ``(lo[k], hi[k])``:
    each node's label is the smallest node of its component. Vectorised union by
    pointer jumping (hook each edge's larger root under the smaller, compress, repeat)."""
    parent = np.arange(n, dtype=np.int64)
    if len(lo) == 0:
        return parent
    while True:
        ru, rv = parent[lo], parent[hi]
        differ = ru != rv
        if not differ.any():
            return parent
        ru, rv = ru[differ], rv[differ]
        np.minimum.at(parent, np.maximum(ru, rv), np.minimum(ru, rv))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


# -- scoring ----------------------------------------------------------------------------

Score = Callable[[IdentityRecord, IdentityRecord], tuple[float, str, bool]]


def _scorer(model: MatchModel[IdentityRecord]) -> Score:
    """Probability, grade and corroboration of a pair without building the evidence (the
    batch hot path); the same arithmetic as :func:`huitong.mpi.model.score_pair`, with the
    per-level weights computed once instead of per pair."""
    table = []
    for comparison, params in zip(model.spec.comparisons, model.params, strict=True):
        weights = tuple(params.level_weight(level) for level in range(len(params.levels)))
        tf = comparison.tf_value if params.tf or params.tf_default else None
        # exact-level weight per value of a term-frequency comparison (names repeat)
        tf_weights: dict[str | None, float] = {}
        table.append((comparison.name, comparison.compare, weights, params.levels, tf, params,
                      tf_weights))
    corroborating = tuple(_CORROBORATING.items())
    rules = model.spec.rules
    prior = model.prior_weight
    grade = model.thresholds.grade

    def score(a: IdentityRecord, b: IdentityRecord) -> tuple[float, str, bool]:
        total = prior
        levels: dict[str, str | None] = {}
        for name, compare, weights, names, tf, params, tf_weights in table:
            level = compare(a, b)
            if level is None:
                levels[name] = None
                continue
            if level == 0 and tf is not None:
                value = tf(a)
                weight = tf_weights.get(value)
                if weight is None:
                    weight = tf_weights[value] = params.weight(0, value)[0]
                total += weight
            else:
                total += weights[level]
            levels[name] = names[level]
        corroborated = any(levels.get(name) in wanted for name, wanted in corroborating)
        for rule in rules:
            if rule.applies(levels):
                return 1.0, "certain", corroborated
        p = probability_of(total)
        return p, grade(p), corroborated

    return score


# -- deciding ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Review:
    source: str
    cluster: int
    matched: str
    grade: str
    probability: float
    evidence: dict[str, Any]


# why a record got the cluster it has (the reason written with a moved link)
_NO_CERTAIN, _UNCORROBORATED, _CERTAIN = 0, 1, 2


@dataclass(slots=True)
class _Plan:
    cluster_of: np.ndarray  # per record: cluster key (curated: 0..K-1; new: K + founder)
    cluster_code: np.ndarray  # per cluster key: golden code it keeps, -1 for a new id
    why: np.ndarray  # per record: _NO_CERTAIN / _UNCORROBORATED / _CERTAIN
    matched: dict[int, int]  # record -> the record whose certain match linked it
    reviews: list[_Review]
    pinned: np.ndarray  # per record: in an operator-curated golden record


def _not_partners(
    repo: Repository,
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Certainly-not memory as source → sources and source → golden ids; a golden reference
    stands for the sources it has now."""
    pairs = repo.query("SELECT a, b FROM mpi_certainly_not")
    partners: dict[str, set[str]] = defaultdict(set)
    goldens: dict[str, set[str]] = defaultdict(set)
    if not pairs:
        return partners, goldens
    ids = sorted({ref.removeprefix("Patient/") for pair in pairs for ref in pair})
    members: dict[str, list[str]] = defaultdict(list)
    for golden, source in _fetch(
        repo, "SELECT golden, source FROM mpi_sources WHERE golden IN", ids
    ):
        members[golden].append(source)

    def expand(ref: str) -> list[str]:
        return members.get(ref.removeprefix("Patient/"), []) or [ref]

    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            if y.removeprefix("Patient/") in members:
                goldens[x].add(y.removeprefix("Patient/"))
            for sx in expand(x):
                for sy in expand(y):
                    if sx != sy:
                        partners[sx].add(sy)
    return partners, goldens


@dataclass(slots=True)
class _Batch:
    """Whole components to decide: everything :func:`_decide_batch` needs, and nothing
    global, so a batch can be decided in another process."""

    members: list[int]  # record positions, ascending (the fixed order)
    sources: list[str]
    texts: list[str]  # stored normalised records (codec JSON)
    pinned: dict[int, int]  # pinned member -> its curated cluster key
    deciders: list[int]  # edges, each owned by the record that decides it
    others: list[int]
    given: list[tuple[float, str]] | None  # pairs scored elsewhere (Spark)
    partners: dict[str, set[str]]  # certainly-not: source -> sources
    not_goldens: dict[str, set[str]]  # certainly-not: source -> golden ids
    curated: dict[int, str]  # curated cluster key -> golden id
    k: int  # curated cluster keys are 0..k-1; a new cluster is k + its founder


@dataclass(slots=True)
class _Decided:
    members: list[int]
    clusters: list[int]
    why: list[int]
    matched: dict[int, int]
    reviews: list[_Review]


def _decide_batch(batch: _Batch, model: MatchModel[IdentityRecord], score: Score) -> _Decided:
    """The online rules for each automatic member, in the fixed order (see the module
    docstring); a member's edges lead only to earlier members or pinned ones, whose
    clusters are therefore settled when it is decided."""
    records = {i: record_from_json(t) for i, t in zip(batch.members, batch.texts, strict=True)}
    source_of = dict(zip(batch.members, batch.sources, strict=True))
    position = {s: i for i, s in source_of.items()}
    edges: dict[int, list[tuple[int, float, str, bool | None]]] = defaultdict(list)
    for n, (d, o) in enumerate(zip(batch.deciders, batch.others, strict=True)):
        if batch.given is not None:
            p, grade = batch.given[n]
            corroborated: bool | None = None
        else:
            p, grade, corroborated = score(records[d], records[o])
        if grade != "certainly-not":
            edges[d].append((o, p, grade, corroborated))
    cluster_of: dict[int, int] = dict(batch.pinned)
    out = _Decided([], [], [], {}, [])
    for i in batch.members:
        if i in batch.pinned:
            continue
        source = source_of[i]
        mine = batch.partners.get(source, set())
        forbidden = {cluster_of[position[p]] for p in mine
                     if p in position and position[p] in cluster_of}  # fmt: skip
        not_g = batch.not_goldens.get(source, set())
        best: dict[int, tuple[float, int, str, bool | None]] = {}
        for o, p, grade, corroborated in edges.get(i, ()):
            c = cluster_of[o]
            if c in forbidden or source_of[o] in mine:
                continue
            if c < batch.k and batch.curated[c] in not_g:
                continue
            if c not in best or p > best[c][0]:
                best[c] = (p, o, grade, corroborated)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        certain = [(c, v) for c, v in ranked if v[2] == "certain"]
        why = _NO_CERTAIN
        cluster_of[i] = batch.k + i
        if len(certain) == 1:
            c, (_p, o, _g, corroborated) = certain[0]
            if corroborated is None:  # pairs scored elsewhere: our own evidence decides
                corroborated = score(records[i], records[o])[2]
            if corroborated:
                cluster_of[i] = c
                why = _CERTAIN
                out.matched[i] = o
            else:
                evidence = explain(score_pair(model, records[i], records[o]))
                out.reviews.append(
                    _Review(source, c, source_of[o], "probable", evidence["probability"],
                            evidence)
                )  # fmt: skip
                why = _UNCORROBORATED
        else:
            for c, (_p, o, _g, _corr) in ranked:
                evidence = explain(score_pair(model, records[i], records[o]))
                out.reviews.append(
                    _Review(source, c, source_of[o], evidence["grade"],
                            evidence["probability"], evidence)
                )  # fmt: skip
        out.members.append(i)
        out.clusters.append(cluster_of[i])
        out.why.append(why)
    return out


# A worker process's model and scorer, set once by _start_worker.
_WORKER: tuple[MatchModel[IdentityRecord], Score] | None = None


def _start_worker(model_json: str, spec_name: str) -> None:
    global _WORKER
    from huitong.mpi.spec import SPECS

    model = MatchModel.from_json(model_json, SPECS[spec_name])
    _WORKER = (model, _scorer(model))


def _decide_in_worker(batch: _Batch) -> _Decided:
    assert _WORKER is not None
    return _decide_batch(batch, *_WORKER)


def _plan(
    service: IdentityService,
    ix: _Index,
    lo: np.ndarray,
    hi: np.ndarray,
    texts: Callable[[Sequence[int]], list[str]],
    progress: Progress,
    summary: RelinkSummary,
    given: dict[tuple[int, int], tuple[float, str]] | None,
    workers: int,
) -> _Plan:
    model = service.model
    n = len(ix.sources)
    pinned = np.zeros(n, dtype=bool)
    linked = ix.current >= 0
    pinned[linked] = ix.curated[ix.current[linked]]
    # Curated clusters first, in golden-id order; then one per founding record, in order.
    curated_codes = np.flatnonzero(ix.curated)
    k = len(curated_codes)
    cluster_code = np.full(k + n, -1, dtype=np.int64)
    cluster_code[:k] = curated_codes
    key_of_code = {int(c): i for i, c in enumerate(curated_codes.tolist())}
    cluster_of = np.full(n, -1, dtype=np.int64)
    for i in np.flatnonzero(pinned).tolist():
        cluster_of[i] = key_of_code[int(ix.current[i])]
    partners, not_goldens = _not_partners(service.repo)
    curated_ids = {key: ix.golden_ids[code] for code, key in key_of_code.items()}

    # An edge belongs to the record that decides it: the automatic one of the two, or the
    # later one in the fixed order when both are automatic. Pairs of two pinned records
    # are an operator's business.
    keep = ~(pinned[lo] & pinned[hi])
    lo, hi = lo[keep], hi[keep]
    decider = np.where(pinned[hi], lo, hi)
    other = np.where(pinned[hi], hi, lo)
    summary.pairs = len(decider)

    # Components: pairs, plus what ties decisions across them (a curated golden's sources,
    # certainly-not partners), so deciding one component at a time changes nothing.
    tie_a: list[int] = []
    tie_b: list[int] = []
    for members in (np.flatnonzero(pinned & (ix.current == c)) for c in curated_codes):
        tie_a.extend(members[:-1].tolist())
        tie_b.extend(members[1:].tolist())
    for source, others in partners.items():
        if source in ix.index:
            for o in others:
                if o in ix.index:
                    tie_a.append(ix.index[source])
                    tie_b.append(ix.index[o])
    label = components(
        n,
        np.concatenate((decider, np.array(tie_a, dtype=np.int64))),
        np.concatenate((other, np.array(tie_b, dtype=np.int64))),
    )
    # Records in no pair: a cluster of their own each, decided without being decoded.
    involved = np.zeros(n, dtype=bool)
    involved[decider] = True
    involved[other] = True
    involved[tie_a] = True
    involved[tie_b] = True
    alone = ~involved & ~pinned
    cluster_of[alone] = k + np.flatnonzero(alone)
    why = np.zeros(n, dtype=np.int8)
    matched: dict[int, int] = {}
    reviews: list[_Review] = []

    # Edges grouped by component, then decider; batches of whole components.
    order = np.lexsort((decider, label[decider]))
    decider, other = decider[order], other[order]
    edge_label = label[decider]
    members_all = np.flatnonzero(involved)
    members_all = members_all[np.lexsort((members_all, label[members_all]))]
    member_label = label[members_all]

    def batches() -> Iterator[_Batch]:
        start = 0
        while start < len(members_all):
            stop = min(start + _BATCH, len(members_all))
            if stop < len(members_all):  # never split a component
                stop = int(np.searchsorted(member_label, member_label[stop - 1], side="right"))
            e0 = int(np.searchsorted(edge_label, member_label[start], side="left"))
            e1 = int(np.searchsorted(edge_label, member_label[stop - 1], side="right"))
            members = np.sort(members_all[start:stop]).tolist()
            start = stop
            sources = [ix.sources[i] for i in members]
            deciders, others = decider[e0:e1].tolist(), other[e0:e1].tolist()
            yield _Batch(
                members, sources, texts(members),
                {i: int(cluster_of[i]) for i in members if pinned[i]},
                deciders, others,
                [given[(d, o) if d < o else (o, d)] for d, o in zip(deciders, others,
                                                                    strict=True)]
                if given is not None else None,
                {s: partners[s] for s in sources if s in partners},
                {s: not_goldens[s] for s in sources if s in not_goldens},
                curated_ids, k,
            )  # fmt: skip

    def settle(result: _Decided) -> None:
        cluster_of[result.members] = result.clusters
        why[result.members] = result.why
        matched.update(result.matched)
        reviews.extend(result.reviews)

    done = 0
    if workers > 1 and len(members_all) > 2 * _BATCH:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Scoring is pure CPU: worker processes decode, score and decide while this one
        # reads the next batches' records from the database.
        with ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(model.to_json(), model.spec.name),
        ) as pool:  # fmt: skip
            pending = []
            for batch in batches():
                pending.append(pool.submit(_decide_in_worker, batch))
                while len(pending) > workers + 1 or (pending and pending[0].done()):
                    result = pending.pop(0).result()
                    settle(result)
                    done += len(result.members)
                    progress("score", done, len(members_all))
            for future in pending:
                settle(future.result())
    else:
        score = _scorer(model)
        for batch in batches():
            settle(_decide_batch(batch, model, score))
            done += len(batch.members)
            progress("score", done, len(members_all))
    progress("score", len(members_all), len(members_all))
    summary.pinned = int(pinned.sum())
    return _Plan(cluster_of, cluster_code, why, matched, reviews, pinned)


def _assign_goldens(ix: _Index, plan: _Plan) -> None:
    """Stable golden ids: in cluster order, a cluster keeps the golden id most of its
    members already had (ties: the smaller id) unless an earlier cluster took it."""
    k = int(ix.curated.sum())
    taken = set(plan.cluster_code[:k].tolist())
    automatic = np.flatnonzero(~plan.pinned & (ix.current >= 0))
    if len(automatic) == 0:
        return
    width = len(ix.golden_ids)
    codes, counts = np.unique(
        plan.cluster_of[automatic] * width + ix.current[automatic], return_counts=True
    )
    clusters, goldens = codes // width, codes % width
    order = np.lexsort((goldens, -counts, clusters))
    settled = -1
    for c, g in zip(clusters[order].tolist(), goldens[order].tolist(), strict=True):
        if c < k or c == settled or g in taken:  # curated clusters keep their own id
            continue
        plan.cluster_code[c] = g
        taken.add(g)
        settled = c


# -- the run ------------------------------------------------------------------------------


def relink(
    service: IdentityService,
    *,
    dry_run: bool = False,
    renormalize: bool = False,
    rebuild_all: bool = False,
    progress: Progress | None = None,
    scored: Iterable[tuple[str, str, float, str]] | None = None,
    workers: int | None = None,
) -> RelinkSummary:
    """Re-decide every source record's link (see the module docstring).

    ``scored`` supplies the candidate pairs as ``(source, source, probability, grade)``
    from an external engine (the Spark path in docs/mpi.md) instead of blocking and
    scoring here; the decisions, link-state rules and writes are the same. ``workers``
    processes decode, score and decide (default: one per core, at most four); small runs
    stay in this process."""
    progress = progress or _noop
    repo = service.repo
    summary = RelinkSummary(dry_run=dry_run)
    started = t0 = time.perf_counter()
    ix = _read_index(service, renormalize, progress)
    n = len(ix.sources)
    summary.records = n
    summary.seconds["load"] = round(time.perf_counter() - t0, 2)

    # Keys: trusted as stored while the key scheme is the running one; else recomputed.
    t0 = time.perf_counter()
    state = repo.query("SELECT value FROM mpi_state WHERE name = 'key_scheme'")
    recompute = renormalize or bool(ix.overlay) or not state or state[0][0] != KEY_SCHEME
    cache: dict[int, str] = {}
    rekey: dict[int, list[str]] = {}
    hashes, owners = array("q"), array("q")
    if recompute:
        for start in range(0, n, _FETCH):
            refs = ix.sources[start : start + _FETCH]
            stored = dict(_fetch(repo, "SELECT source, record FROM mpi_records WHERE source IN",
                                 [r for r in refs if r not in ix.overlay]))  # fmt: skip
            keys_of: dict[str, list[str]] = defaultdict(list)
            for source, key in _fetch(
                repo, "SELECT source, key FROM mpi_keys WHERE source IN", refs
            ):
                keys_of[source].append(key)
            for i, source in enumerate(refs, start):
                text = ix.overlay.get(source) or stored[source]
                every = sorted(index_keys(record_from_json(text)))
                # compare as sorted lists: the database's collation need not be Python's
                if source in ix.overlay or sorted(keys_of.get(source, ())) != every:
                    rekey[i] = every
                    cache[i] = text  # to rewrite; the others are read again when scored
                for key in every:
                    if not key.startswith("nm:"):  # search keys never block
                        hashes.append(hash(key))
                        owners.append(i)
            progress("keys", start + len(refs), n)
    summary.records_rewritten = len(rekey)
    summary.seconds["keys"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    given: dict[tuple[int, int], tuple[float, str]] | None = None
    if scored is not None:
        # Pairs blocked and scored elsewhere (Spark): the same decisions are made from them.
        given = {}
        for a, b, p, grade in scored:
            x, y = ix.index.get(a), ix.index.get(b)
            if x is not None and y is not None and x != y:
                given[(min(x, y), max(x, y))] = (float(p), grade)
        pairs = sorted(given)
        lo = np.array([i for i, _ in pairs], dtype=np.int64)
        hi = np.array([j for _, j in pairs], dtype=np.int64)
    elif recompute:
        lo, hi = _hash_pairs(
            np.frombuffer(hashes, dtype=np.int64) if hashes else np.zeros(0, np.int64),
            np.frombuffer(owners, dtype=np.int64) if owners else np.zeros(0, np.int64),
            n, _MAX_BLOCK,
        )  # fmt: skip
    else:
        lo, hi = _stored_block_pairs(repo, ix.index, _MAX_BLOCK, progress)
    del hashes, owners
    summary.seconds["block"] = round(time.perf_counter() - t0, 2)

    def texts(indices: Sequence[int]) -> list[str]:
        missing = [ix.sources[i] for i in indices if i not in cache]
        found = dict(
            _fetch(repo, "SELECT source, record FROM mpi_records WHERE source IN", missing)
        ) if missing else {}  # fmt: skip
        return [cache.get(i) or ix.overlay.get(ix.sources[i]) or found[ix.sources[i]]
                for i in indices]  # fmt: skip

    t0 = time.perf_counter()
    if workers is None:
        workers = min(os.cpu_count() or 1, 4)
    plan = _plan(service, ix, lo, hi, texts, progress, summary, given, workers)
    del lo, hi, given
    summary.seconds["score"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    _assign_goldens(ix, plan)
    # Golden ids for new clusters are drawn only when writing: a dry run draws none.
    new_ids: dict[int, str] = {}

    def golden_of_cluster(c: int) -> str:
        code = int(plan.cluster_code[c])
        if code >= 0:
            return ix.golden_ids[code]
        if c not in new_ids:
            new_ids[c] = f"(new {c})" if dry_run else service.new_id()
        return new_ids[c]

    automatic = np.flatnonzero(~plan.pinned)
    target = plan.cluster_code[plan.cluster_of[automatic]]
    moving = automatic[(target < 0) | (target != ix.current[automatic])]
    moves: list[tuple[int, str | None, str]] = []  # record, old golden, new golden
    for i in moving.tolist():
        old = int(ix.current[i])
        moves.append(
            (i, ix.golden_ids[old] if old >= 0 else None,
             golden_of_cluster(int(plan.cluster_of[i])))
        )  # fmt: skip
    summary.links_made = len(moves)
    summary.links_removed = sum(1 for m in moves if m[1] is not None)
    summary.goldens_created = len(new_ids)
    kept_codes = set(plan.cluster_code[np.unique(plan.cluster_of)].tolist()) if n else set()
    old_codes = set(np.unique(ix.current[ix.current >= 0]).tolist())
    summary.goldens_retired = len(old_codes - kept_codes - ix.orphan_goldens)

    desired = {(r.source, golden_of_cluster(r.cluster)): r for r in plan.reviews}
    existing = {
        (s, g): int(i)
        for i, s, g in repo.query("SELECT id, source, golden FROM mpi_review WHERE status = 'open'")
    }
    stale = [
        i for (s, g), i in existing.items()
        if (s, g) not in desired and not (s in ix.index and plan.pinned[ix.index[s]])
    ]  # fmt: skip
    fresh = [r for key, r in desired.items() if key not in existing]
    summary.queued, summary.superseded = len(fresh), len(stale)
    touched = {g for _i, old, new in moves for g in (old, new) if g}
    everyone: set[str] = set()
    if rebuild_all:
        everyone = {golden_of_cluster(int(c)) for c in np.unique(plan.cluster_of).tolist()}
        summary.goldens_rebuilt = len(everyone)
    else:
        summary.goldens_rebuilt = len(touched)
    summary.seconds["decide"] = round(time.perf_counter() - t0, 2)
    if dry_run:
        summary.seconds["total"] = round(time.perf_counter() - started, 2)
        return summary

    t0 = time.perf_counter()
    _rewrite_records(service, ix, rekey, cache, progress)
    if recompute:
        with repo.transaction() as tx:
            tx.execute(
                "INSERT INTO mpi_state (name, value) VALUES ('key_scheme', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (KEY_SCHEME,),
            )
    summary.seconds["write_keys"] = round(time.perf_counter() - t0, 2)
    cache.clear()

    t0 = time.perf_counter()
    reasons = {
        _NO_CERTAIN: "relink: no certain match, new golden record",
        _UNCORROBORATED: "relink: certain but uncorroborated match, new golden record",
    }

    def org_of(i: int) -> str:
        if ix.orgs[i] or ix.current[i] >= 0:
            return ix.orgs[i]
        return record_from_json(texts([i])[0]).source_org  # never linked: from its record

    def reason(i: int) -> str:
        if int(plan.why[i]) == _CERTAIN:
            return f"relink: certain match with {ix.sources[plan.matched[i]]}"
        return reasons[int(plan.why[i])]

    rows = [(ix.sources[i], org_of(i), old, new, reason(i)) for i, old, new in moves]
    _apply_moves(service, rows, set(new_ids.values()), progress)
    if rebuild_all:
        others = sorted(everyone - touched)

        def rebuild(chunk: list[str]) -> None:
            with repo.transaction() as tx:
                service._refresh_goldens(tx, chunk)

        _run_transactions(service, [list(c) for c in _chunks(others, _GOLDENS_PER_TX)],
                          rebuild, len, "rebuild", len(others), progress)  # fmt: skip
    summary.seconds["write_links"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    now = service.clock()
    with repo.transaction() as tx:
        for chunk in _chunks(stale):
            tx.execute(
                f"UPDATE mpi_review SET status = 'superseded', decided_at = ?, decided_by = ?, "
                f"reason = ? WHERE id IN ({', '.join('?' * len(chunk))})",
                (now, SYSTEM_ACTOR, "relink: no longer proposed", *chunk),
            )
        for chunk in _chunks(fresh):
            tx.execute(
                "INSERT INTO mpi_review (source, golden, matched_source, grade, probability, "
                "evidence, status, created_at) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                [v for r in chunk for v in (
                    r.source, golden_of_cluster(r.cluster), r.matched, r.grade,
                    float(r.probability), orjson.dumps(r.evidence).decode(), "open", now,
                )],
            )  # fmt: skip
    summary.seconds["write_reviews"] = round(time.perf_counter() - t0, 2)
    summary.seconds["total"] = round(time.perf_counter() - started, 2)
    return summary


# -- writing ------------------------------------------------------------------------------


def _rewrite_records(
    service: IdentityService, ix: _Index, rekey: dict[int, list[str]], cache: dict[int, str],
    progress: Progress,
) -> None:
    """Stored records and keys of the records whose normalised form or keys changed."""
    todo = sorted(rekey)
    for done, chunk in enumerate(_chunks(todo)):
        sources = [ix.sources[i] for i in chunk]
        marks = ", ".join("?" * len(sources))
        with service.repo.transaction() as tx:
            tx.execute(f"DELETE FROM mpi_keys WHERE source IN ({marks})", sources)
            tx.execute(f"DELETE FROM mpi_records WHERE source IN ({marks})", sources)
            keys = [(k, ix.sources[i]) for i in chunk for k in rekey[i]]
            for part in _chunks(keys):
                tx.execute(
                    "INSERT INTO mpi_keys (key, source) VALUES "
                    + ", ".join(["(?, ?)"] * len(part)),
                    [v for row in part for v in row],
                )
            tx.execute(
                "INSERT INTO mpi_records (source, record) VALUES "
                + ", ".join(["(?, ?)"] * len(chunk)),
                [v for i in chunk for v in (ix.sources[i], cache[i])],
            )
        progress("write", done * _CHUNK + len(chunk), len(todo))


def _apply_moves(
    service: IdentityService, rows: list[tuple[str, str, str | None, str, str]],
    new_goldens: set[str], progress: Progress,
) -> None:
    """Moved links ``(source, org, old golden, new golden, reason)`` and the golden records
    they touch.

    Moves are grouped so that every golden record they touch (the one a source leaves and
    the one it joins) is in one group; groups are packed into transactions of about
    :data:`_GOLDENS_PER_TX` golden records. So each golden Patient is rebuilt once, in the
    transaction that changes its links, and after each commit goldens agree with links."""
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.setdefault(g, g) != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for _source, _org, old, new, _reason in rows:
        a, b = find(new), find(old) if old else find(new)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, list[tuple[str, str, str | None, str, str]]] = defaultdict(list)
    for row in rows:
        groups[find(row[3])].append(row)

    def write(roots: list[str]) -> None:
        moved = [r for root in roots for r in groups[root]]
        touched = sorted({g for r in moved for g in (r[2], r[3]) if g})
        now = service.clock()
        with service.repo.transaction() as tx:
            for chunk in _chunks(moved):
                tx.execute(
                    "INSERT INTO mpi_sources (source, source_org, golden, grade, linked_by, "
                    "linked_at, reason) VALUES "
                    + ", ".join(["(?, ?, ?, 'certain', ?, ?, ?)"] * len(chunk))
                    + " ON CONFLICT (source) DO UPDATE SET golden = excluded.golden, "
                    "grade = excluded.grade, linked_by = excluded.linked_by, "
                    "linked_at = excluded.linked_at, reason = excluded.reason",
                    [v for s, org, _old, g, why in chunk
                     for v in (s, org, g, SYSTEM_ACTOR, now, why)],
                )
                tx.execute(
                    "INSERT INTO mpi_history (at, actor, action, source, golden, reason) VALUES "
                    + ", ".join(["(?, ?, 'link', ?, ?, ?)"] * len(chunk)),
                    [v for s, _org, _o, g, why in chunk for v in (now, SYSTEM_ACTOR, s, g, why)],
                )
            service._refresh_goldens(tx, touched, fresh=new_goldens)

    transactions: list[list[str]] = [[]]
    size = 0
    for root in sorted(groups):
        transactions[-1].append(root)
        size += len({g for r in groups[root] for g in (r[2], r[3]) if g})
        if size >= _GOLDENS_PER_TX:
            transactions.append([])
            size = 0
    _run_transactions(service, [t for t in transactions if t], write,
                      lambda roots: sum(len(groups[r]) for r in roots), "link", len(rows),
                      progress)  # fmt: skip


def _run_transactions(
    service: IdentityService, jobs: list[list[str]], write: Callable[[list[str]], None],
    weight: Callable[[list[str]], int], stage: str, total: int, progress: Progress,
) -> None:
    """Run ``write(job)`` for every job, each its own transaction. The jobs touch disjoint
    rows, so on PostgreSQL a few run at once on their own connections: a golden update is
    two round trips, and on a busy machine the waiting, not the work, is most of the time.
    SQLite has one writer: there they run one after another."""
    threads = _WRITERS if service.repo.dialect == "postgresql" else 1
    done = 0
    if threads == 1 or len(jobs) == 1:
        for job in jobs:
            write(job)
            done += weight(job)
            progress(stage, done, total)
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(threads) as pool:
        running = {pool.submit(write, job): job for job in jobs}
        while running:
            finished, _pending = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                future.result()  # a failed transaction stops the run; the next run resumes
                done += weight(job)
                progress(stage, done, total)

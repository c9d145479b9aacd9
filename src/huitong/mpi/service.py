"""The identity service: the master patient index inside the write pipeline.

Every Patient an institution sends stays as its *source* record. After each source Patient
write — in the same database transaction, through the repository's write hook — the service
normalises it, refreshes its blocking keys, finds candidates by those keys (index lookups,
no scan), scores them with the current model and acts:

- one certain match: the source joins that golden record;
- probable / possible matches: a review item per golden record, with the evidence;
- otherwise: a new golden Patient is created for it.

The golden Patient is an ordinary FHIR Patient tagged ``urn:huitong:mpi|golden``, assembled
by survivorship rules from its sources, with ``Patient.link`` (``seealso``) to each. It
carries only its own identifier (``urn:huitong:mpi:golden``): copying the sources' MRNs or
resident IDs onto it would make conditional writes keyed on them ambiguous. Operators link,
unlink, merge and mark pairs certainly-not with a reason; every change is in the history.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

import orjson

from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import Category, FhirError
from huitong.mpi.blocking import blocking_keys, index_keys, name_keys
from huitong.mpi.codec import record_from_json, record_to_json
from huitong.mpi.compare.dates import date_level
from huitong.mpi.decisions import LinkAction, decide, pair_key
from huitong.mpi.golden import GoldenSource, assemble_golden
from huitong.mpi.model import MatchModel, explain, score_pair
from huitong.mpi.normalize.identifiers import ID_RESIDENT, normalize_identifier
from huitong.mpi.normalize.names import PersonName, parse_name
from huitong.mpi.normalize.phones import parse_phone
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.resident_id import ResidentIdError, normalize_resident_id, parse_resident_id
from huitong.mpi.spec import IDENTITY_SPEC
from huitong.store.repository import Repository, StoredResource, Transaction

__all__ = [
    "GOLDEN_SYSTEM",
    "GOLDEN_TAG",
    "IdentityService",
    "ReviewItem",
    "default_model",
    "is_golden",
]

log = logging.getLogger("huitong.mpi")

GOLDEN_TAG = {"system": "urn:huitong:mpi", "code": "golden",
              "display": "Golden (master) record / 主索引记录"}
GOLDEN_SYSTEM = "urn:huitong:mpi:golden"
_MAX_CANDIDATES = 200
_READ_CHUNK = 1000  # Patients per _id search (the search's largest page)
_MAX_BLOCK = 50
SYSTEM_ACTOR = "huitong-mpi"


def default_model() -> MatchModel[IdentityRecord]:
    """The model shipped with Huitong (trained on synthetic data by
    tools/train_default_mpi_model.py) until a region trains its own."""
    text = resources.files("huitong.mpi").joinpath("default_model.json").read_text("utf-8")
    return MatchModel.from_json(text, IDENTITY_SPEC)


def is_golden(patient: dict[str, Any]) -> bool:
    tags = (patient.get("meta") or {}).get("tag") or []
    return any(t.get("system") == GOLDEN_TAG["system"] and t.get("code") == GOLDEN_TAG["code"]
               for t in tags if isinstance(t, dict))


def _org_of(patient: dict[str, Any]) -> str:
    org = patient.get("managingOrganization")
    ref = org.get("reference") if isinstance(org, dict) else None
    return ref if isinstance(ref, str) else ""


# Evidence that ties two records to one person beyond demographics. Names and birth dates
# agree for many people (张伟 born the same year); a false merge shows one person another's
# record, which is worse for a region than a duplicate a reviewer resolves. So a match
# links automatically only when one of these agrees as well; otherwise it goes to review.
_CORROBORATING = {"resident_id": {"exact", "upgraded"}, "phone": {"exact"},
                  "identifier": {"exact"}}


def _corroborated_evidence(evidence: dict[str, Any] | None) -> bool:
    """True when the evidence (:func:`explain`) has an agreeing corroborating field."""
    fields = (evidence or {}).get("fields", [])
    return any(f.get("level") in _CORROBORATING.get(f.get("comparison"), ()) for f in fields)


def _corroborated(actions: list[LinkAction]) -> list[LinkAction]:
    out: list[LinkAction] = []
    for action in actions:
        backed = _corroborated_evidence(action.evidence)
        if action.kind == "link" and not backed:
            out.append(replace(action, kind="review", grade="probable", auto=False))
            out.append(LinkAction("create-golden", action.source))
        else:
            out.append(action)
    return out


_ID_TEXT = re.compile(r"^\s*\d{6}(\d{9}|\d{11}[\dXx])\s*$")
_PHONE_TEXT = re.compile(r"^[\s+()\d-]{7,}$")


_RANK = {"resident-id": 0, "identifier": 0, "phone": 1, "name": 2, "name-pinyin": 3,
         "name-homophone": 4}


def _name_kind(query: PersonName, record: IdentityRecord) -> str:
    """How a name search found ``record``: the same characters, the same pinyin (either
    order for a Latin-script query), or only a near-homophone."""
    wanted = {query.family_pinyin + query.given_pinyin}
    if not query.order_known:
        wanted.add(query.given_pinyin + query.family_pinyin)
    kind = "name-homophone"
    for name in record.names:
        if query.script == "han" and name.full == query.full:
            return "name"
        if name.family_pinyin + name.given_pinyin in wanted:
            kind = "name-pinyin"
    return kind


def _search_keys(q: str) -> tuple[list[str], str]:
    """The index keys a search text stands for, and what kind of text it is."""
    text = q.strip()
    if not text:
        return [], ""
    if "|" in text:
        system, _, value = text.partition("|")
        if system == ID_RESIDENT:
            return _search_keys(value)
        ident = normalize_identifier(system or None, value)
        return ([f"id:{ident.key}"], "identifier") if ident else ([], "")
    if _ID_TEXT.match(text):
        try:
            return [f"rid:{parse_resident_id(text).number}"], "resident-id"
        except ResidentIdError:
            return [f"rid:{normalize_resident_id(text)}"], "resident-id"
    if _PHONE_TEXT.match(text):
        phone = parse_phone(text)
        return ([f"ph:{phone.number}"], "phone") if phone else ([], "")
    name = parse_name(text=text)
    if name is None:
        return [], ""
    return sorted(name_keys(IdentityRecord(source="", names=(name,)))), "name"


@dataclass(frozen=True, slots=True)
class ReviewItem:
    id: int
    source: str
    golden: str
    matched_source: str | None
    grade: str
    probability: float
    evidence: dict[str, Any]
    status: str
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "golden": f"Patient/{self.golden}",
                "matchedSource": self.matched_source, "grade": self.grade,
                "probability": round(self.probability, 6), "evidence": self.evidence,
                "status": self.status, "createdAt": self.created_at}


Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

# Candidates repeat: a block's records come back for every new Patient sharing its key, and
# decoding one (orjson and a dozen small objects) costs far more than hashing its text. Keyed
# by the stored text itself, so a changed record is another key and never served stale;
# records are frozen, so matches can share them. 4,096 records are a few megabytes.
_decoded_record = lru_cache(maxsize=4096)(record_from_json)


def fetch_candidates(
    execute: Execute, keys: Sequence[str], *, exclude: str | None = None,
    read: Callable[..., StoredResource | None] | None = None,
    max_block: int = _MAX_BLOCK, limit: int = _MAX_CANDIDATES,
) -> list[tuple[IdentityRecord, str | None]]:
    """The source records sharing a blocking key with ``keys``, with their golden ids
    (``None`` while unlinked), in ONE query over indexed keys.

    A key shared by very many records (a common name with a common birth date, a
    placeholder phone) says little and costs much: like any blocking scheme, keys whose
    block is larger than ``max_block`` are skipped; the specific keys (resident ID, phone,
    identifiers) still find the match. Each key's lookup stops after ``max_block + 1``
    index entries, so a huge block costs no more than a small one. Records stored before
    ``mpi_records`` existed are read from their Patient (``read``) and normalised.
    """
    keys = sorted(set(keys))
    if not keys:
        return []
    per_key = " UNION ALL ".join(
        f"SELECT * FROM (SELECT key, source FROM mpi_keys WHERE key = ? LIMIT {max_block + 1})"
        f" AS b{n}" for n in range(len(keys)))
    rows = execute(
        f"WITH hits AS ({per_key}), small AS (SELECT key FROM hits GROUP BY key "
        f"HAVING COUNT(*) <= {max_block}) "
        f"SELECT DISTINCT h.source, s.golden, r.record FROM hits h "
        f"LEFT JOIN mpi_sources s ON s.source = h.source "
        f"LEFT JOIN mpi_records r ON r.source = h.source "
        f"WHERE h.key IN (SELECT key FROM small) AND h.source <> ? "
        f"ORDER BY h.source LIMIT {limit}",
        (*keys, exclude or ""),
    )
    out: list[tuple[IdentityRecord, str | None]] = []
    for ref, golden, text in rows:
        if text is not None:
            out.append((_decoded_record(text), golden))
            continue
        found = read("Patient", ref.removeprefix("Patient/")) if read else None
        if found is not None and not found.deleted:
            out.append((record_from_patient(found.resource,
                                            source_org=_org_of(found.resource)), golden))
    return out


def _read_patients(tx: Transaction, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The current (not deleted) Patients of ``ids``, by id: one ``_id`` search per
    thousand instead of a read each."""
    from huitong.fhir.search.parse import parse_search

    wanted = sorted({i for i in ids if i and "," not in i})
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _READ_CHUNK):
        chunk = wanted[start:start + _READ_CHUNK]
        page = tx.search(parse_search("Patient", [
            ("_id", ",".join(chunk)), ("_count", str(len(chunk))), ("_total", "none")]))
        out.update((m.id, m.resource) for m in page.matches)
    return out


class IdentityService:
    """Install with :meth:`install`; then every Patient write is matched in its transaction."""

    def __init__(
        self,
        repo: Repository,
        *,
        clock: Clock,
        new_id: IdFactory,
        model: MatchModel[IdentityRecord] | None = None,
        trust: dict[str, float] | None = None,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.new_id = new_id
        self._model = model
        self.trust = trust or {}

    def install(self) -> None:
        self.repo.add_write_hook("mpi", ["Patient"], self._after_patient_write)

    # -- the model ---------------------------------------------------------------------
    @property
    def model(self) -> MatchModel[IdentityRecord]:
        if self._model is None:
            rows = self.repo.query("SELECT model FROM mpi_models ORDER BY id DESC LIMIT 1")
            self._model = (MatchModel.from_json(rows[0][0], IDENTITY_SPEC) if rows
                           else default_model())
        return self._model

    def train(self, *, seed: int = 1) -> tuple[MatchModel[IdentityRecord], int, int]:
        """Estimate m, u and the prior from this region's own source records (EM, no
        labels) and make the result the model that scores from now on. Returns the model,
        the number of records and of candidate pairs it learnt from."""
        from huitong.fhir.search.parse import parse_search
        from huitong.mpi.training import train_model
        from huitong.store.repository import iter_pages

        query = parse_search("Patient", [("_tag:not", "urn:huitong:mpi|golden"),
                                         ("_count", "1000")])
        records = [record_from_patient(p.resource, source_org=_org_of(p.resource))
                   for p in iter_pages(self.repo, query)]
        if len(records) < 2:
            raise FhirError(Category.UNPROCESSABLE,
                            "too few patient records to train on / 患者记录太少，无法训练")
        report = train_model(IDENTITY_SPEC, records, seed=seed)
        self.save_model(report.model, f"EM on {len(records)} source records")
        return report.model, len(records), report.candidate_pairs

    def save_model(self, model: MatchModel[IdentityRecord], note: str) -> None:
        with self.repo.transaction() as tx:
            tx.execute("INSERT INTO mpi_models (created_at, model, note) VALUES (?, ?, ?)",
                       (self.clock(), model.to_json(), note))
        self._model = model

    # -- the write hook -----------------------------------------------------------------
    def _after_patient_write(
        self, tx: Transaction, stored: StoredResource, content: dict[str, Any] | None
    ) -> None:
        source = f"Patient/{stored.id}"
        if content is None:
            self._source_deleted(tx, source)
            return
        if is_golden(content):
            return
        record = record_from_patient(content, source_org=_org_of(content))
        keys = sorted(blocking_keys(record))
        every = sorted(index_keys(record))
        # A first version has no index rows yet (a delete removes them, and a re-created
        # Patient gets a later version): skip the statements that would find nothing.
        first = stored.version_id == 1
        if not first:
            tx.execute_later("DELETE FROM mpi_keys WHERE source = ?", (source,))
        tx.execute_later(
            "INSERT INTO mpi_records (source, record) VALUES (?, ?) ON CONFLICT (source) "
            "DO UPDATE SET record = excluded.record", (source, record_to_json(record)))
        if every:
            rows = ", ".join(["(?, ?)"] * len(every))
            tx.execute_later(f"INSERT INTO mpi_keys (key, source) VALUES {rows}",
                       [v for key in every for v in (key, source)])
        # The Patient as stored, parsed afresh: the golden record may share its parts.
        known = {source: stored.resource}
        linked = [] if first else tx.execute(
            "SELECT golden FROM mpi_sources WHERE source = ?", (source,))
        if linked:
            # An update of a linked source: the link stands (operators change links), the
            # golden record is reassembled from the sources' new content.
            self._refresh_goldens(tx, [linked[0][0]], known=known)
            return
        self._match_new(tx, source, record, keys, known)

    def _match_new(
        self, tx: Transaction, source: str, record: IdentityRecord, keys: Sequence[str],
        known: dict[str, dict[str, Any]],
    ) -> None:
        # one query: the candidates with the golden records they are linked to
        found = fetch_candidates(tx.execute, keys, exclude=source, read=tx.read)
        candidates = [r for r, _g in found]
        links = {r.source: g for r, g in found if g is not None}
        not_pairs = self._certainly_not(
            tx, [source, *links, *(f"Patient/{g}" for g in links.values())]) if links else set()
        golden_links = {s: f"Patient/{g}" for s, g in links.items()}
        actions = _corroborated(decide(record, candidates, golden_links, not_pairs, self.model))
        now = self.clock()
        for action in actions:
            if action.kind == "link" and action.golden:
                golden = action.golden.removeprefix("Patient/")
                self._link(tx, source, record.source_org, golden, "certain", SYSTEM_ACTOR,
                           f"automatic: certain match with {action.matched_source}",
                           detail=action.evidence)
                self._refresh_goldens(tx, [golden], known=known)
            elif action.kind == "review" and action.golden:
                tx.execute_later(
                    "INSERT INTO mpi_review (source, golden, matched_source, grade, "
                    "probability, evidence, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (source, action.golden.removeprefix("Patient/"), action.matched_source,
                     action.grade or "possible", float(action.probability or 0.0),
                     orjson.dumps(action.evidence or {}).decode(), "open", now),
                )
            elif action.kind == "create-golden":
                golden = self.new_id()
                self._link(tx, source, record.source_org, golden, "certain", SYSTEM_ACTOR,
                           "automatic: no certain match, new golden record",
                           settle_reviews=False)
                # A new golden record of one source: assembled from the Patient in hand,
                # with no reads (the most common outcome for a new Patient in a region).
                self._refresh_goldens(tx, [golden], fresh={golden},
                                      members={golden: [(source, record.source_org)]},
                                      known=known)

    def _certainly_not(self, tx: Transaction, refs: Sequence[str]) -> set[frozenset[str]]:
        wanted = sorted(set(refs))
        marks = ", ".join("?" * len(wanted))
        rows = tx.execute(
            f"SELECT a, b FROM mpi_certainly_not WHERE a IN ({marks}) OR b IN ({marks})",
            (*wanted, *wanted),
        )
        return {pair_key(a, b) for a, b in rows}

    def _link(
        self, tx: Transaction, source: str, org: str | None, golden: str, grade: str,
        actor: str, reason: str, *, detail: dict[str, Any] | None = None,
        settle_reviews: bool = True,
    ) -> None:
        now = self.clock()
        tx.execute_later(
            "INSERT INTO mpi_sources (source, source_org, golden, grade, linked_by, linked_at, "
            "reason) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
            "golden = excluded.golden, grade = excluded.grade, linked_by = excluded.linked_by, "
            "linked_at = excluded.linked_at, reason = excluded.reason",
            (source, org, golden, grade, actor, now, reason),
        )
        self._history(tx, actor, "link", source=source, golden=golden, reason=reason,
                      detail=detail)
        if not settle_reviews:
            return
        # The source's open review items are settled by this decision.
        tx.execute_later("UPDATE mpi_review SET status = 'superseded', decided_at = ? "
                         "WHERE source = ? AND status = 'open'", (now, source))

    def _history(
        self, tx: Transaction, actor: str, action: str, *, source: str | None = None,
        golden: str | None = None, other: str | None = None, reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        tx.execute_later(
            "INSERT INTO mpi_history (at, actor, action, source, golden, other, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.clock(), actor, action, source, golden, other, reason,
             orjson.dumps(detail).decode() if detail else None),
        )

    def _refresh_golden(self, tx: Transaction, golden: str) -> None:
        """Reassemble the golden Patient from its current sources (survivorship)."""
        self._refresh_goldens(tx, [golden])

    def _refresh_goldens(
        self, tx: Transaction, goldens: Iterable[str], *, fresh: Collection[str] = (),
        members: Mapping[str, Sequence[tuple[str, str]]] | None = None,
        known: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """Reassemble these golden Patients from their current sources (survivorship),
        reading the links with one query and the Patients with one search per thousand
        instead of a read each. A golden Patient that would not change gets no new
        version; one left without sources is deleted.

        ``fresh``: ids just drawn, known not to exist (created without a read).
        ``members``: golden → ``(source, organisation)`` when the caller knows them.
        ``known``: source reference → its current Patient, when the caller has it."""
        wanted = sorted(set(goldens))
        if not wanted:
            return
        if members is None:
            found: dict[str, list[tuple[str, str]]] = {g: [] for g in wanted}
            for start in range(0, len(wanted), 1000):
                chunk = wanted[start:start + 1000]
                for golden, ref, org in tx.execute(
                    "SELECT golden, source, source_org FROM mpi_sources WHERE golden IN "
                    f"({', '.join('?' * len(chunk))})", chunk,
                ):
                    found[golden].append((ref, org or ""))
            members = found
        known = known or {}
        ids = [ref.removeprefix("Patient/") for g in wanted for ref, _o in members.get(g, ())
               if ref not in known]
        ids += [g for g in wanted if g not in fresh]
        patients = _read_patients(tx, ids)
        for golden in wanted:
            sources = []
            for ref, org in members.get(golden, ()):
                content = known.get(ref) or patients.get(ref.removeprefix("Patient/"))
                if content is not None:
                    sources.append(GoldenSource(ref, org or "", content))
            existing = None if golden in fresh else patients.get(golden)
            if not sources:
                if existing is not None:
                    tx.delete("Patient", golden)
                continue
            patient = assemble_golden(sources, self.trust, golden_id=golden)
            patient["identifier"] = [{"system": GOLDEN_SYSTEM, "value": golden}]
            patient["meta"] = {"tag": [GOLDEN_TAG]}
            if existing is not None:
                current = dict(existing)
                current.pop("meta", None)
                candidate = dict(patient)
                candidate.pop("meta", None)
                if current == candidate:
                    continue  # nothing changed: no new version
            if golden in fresh:
                tx.create(patient, id=golden)
            else:
                tx.update(patient)  # also revives a golden Patient deleted earlier

    def _source_deleted(self, tx: Transaction, source: str) -> None:
        linked = tx.execute("SELECT golden FROM mpi_sources WHERE source = ?", (source,))
        tx.execute_later("DELETE FROM mpi_keys WHERE source = ?", (source,))
        tx.execute_later("DELETE FROM mpi_records WHERE source = ?", (source,))
        if not linked:
            return
        golden = linked[0][0]
        tx.execute_later("DELETE FROM mpi_sources WHERE source = ?", (source,))
        self._history(tx, SYSTEM_ACTOR, "source-deleted", source=source, golden=golden,
                      reason="the source record was deleted")
        self._refresh_golden(tx, golden)

    # -- reads -------------------------------------------------------------------------
    def _read_or_none(self, resource_type: str, rid: str) -> StoredResource | None:
        try:
            return self.repo.read(resource_type, rid)
        except FhirError:
            return None  # deleted or never there: not a candidate

    def golden_of(self, source_id: str, *, tx: Transaction | None = None) -> str | None:
        """The golden record ``Patient/<source_id>`` is linked to. ``tx``: read inside that
        transaction (a check running in a write sees the links as that write does, and
        costs no connection and transaction of its own)."""
        sql, params = "SELECT golden FROM mpi_sources WHERE source = ?", (f"Patient/{source_id}",)
        rows = tx.execute(sql, params) if tx is not None else self.repo.query(sql, params)
        return rows[0][0] if rows else None

    def sources_of(self, golden_id: str, *, tx: Transaction | None = None) -> list[str]:
        """Ids (without ``Patient/``) of the source records linked to ``golden_id``; empty
        when it is not a golden record. ``tx``: read inside that transaction (as
        :meth:`golden_of`)."""
        sql = "SELECT source FROM mpi_sources WHERE golden = ? ORDER BY source"
        params = (golden_id,)
        rows = tx.execute(sql, params) if tx is not None else self.repo.query(sql, params)
        return [r[0].removeprefix("Patient/") for r in rows]

    def links(self, golden_id: str) -> list[dict[str, Any]]:
        rows = self.repo.query(
            "SELECT source, source_org, grade, linked_by, linked_at, reason FROM mpi_sources "
            "WHERE golden = ? ORDER BY source", (golden_id,))
        return [{"source": s, "organization": o, "grade": g, "linkedBy": b, "linkedAt": a,
                 "reason": r} for s, o, g, b, a, r in rows]

    def history(self, ref: str) -> list[dict[str, Any]]:
        """Link history of a source (``Patient/x``) or golden id."""
        rows = self.repo.query(
            "SELECT at, actor, action, source, golden, other, reason FROM mpi_history "
            "WHERE source = ? OR golden = ? OR other = ? ORDER BY id",
            (ref, ref.removeprefix("Patient/"), ref),
        )
        return [{"at": at, "actor": actor, "action": action, "source": s, "golden": g,
                 "other": o, "reason": r} for at, actor, action, s, g, o, r in rows]

    def review_queue(self, *, status: str = "open", limit: int = 50,
                     offset: int = 0) -> tuple[list[ReviewItem], int]:
        total = int(self.repo.query("SELECT COUNT(*) FROM mpi_review WHERE status = ?",
                                    (status,))[0][0])
        rows = self.repo.query(
            "SELECT id, source, golden, matched_source, grade, probability, evidence, status, "
            "created_at FROM mpi_review WHERE status = ? ORDER BY probability DESC, id "
            "LIMIT ? OFFSET ?", (status, limit, offset))
        return [ReviewItem(int(i), s, g, m, gr, float(p), orjson.loads(e or "{}"), st, int(c))
                for i, s, g, m, gr, p, e, st, c in rows], total

    # -- operator actions ------------------------------------------------------------------
    def _require_reason(self, reason: str) -> None:
        if not reason or not reason.strip():
            raise FhirError(Category.INVALID, "a reason is required / 必须填写原因")

    def _require_source(self, tx: Transaction, source: str) -> str:
        rows = tx.execute("SELECT golden FROM mpi_sources WHERE source = ?", (source,))
        if not rows:
            raise FhirError(
                Category.NOT_FOUND,
                f"{source} is not a source record in the index / 不是主索引中的来源记录",
            )
        return str(rows[0][0])

    def link(self, source: str, golden: str, *, by: str, reason: str) -> None:
        """Move ``source`` to ``golden`` (a manual link)."""
        self._require_reason(reason)
        with self.repo.transaction() as tx:
            old = self._require_source(tx, source)
            if not tx.execute("SELECT 1 FROM mpi_sources WHERE golden = ?", (golden,)):
                raise FhirError(Category.NOT_FOUND,
                                f"Patient/{golden} is not a golden record / 不是主索引记录")
            if self._certainly_not(tx, [source, f"Patient/{golden}"]) & {
                pair_key(source, f"Patient/{golden}")
            }:
                raise FhirError(Category.CONFLICT, "this pair was marked certainly-not / "
                                "该对记录已被标记为确定不是同一人")
            org = tx.execute("SELECT source_org FROM mpi_sources WHERE source = ?", (source,))
            self._link(tx, source, org[0][0], golden, "manual", by, reason)
            self._refresh_golden(tx, golden)
            if old != golden:
                self._refresh_golden(tx, old)

    def unlink(self, source: str, *, by: str, reason: str) -> str:
        """Take ``source`` out of its golden record into a new one of its own; the pair is
        remembered as certainly-not so matching does not put it back. Returns the new id."""
        self._require_reason(reason)
        with self.repo.transaction() as tx:
            old = self._require_source(tx, source)
            new = self.new_id()
            self._mark_not(tx, source, f"Patient/{old}", by, reason)
            org = tx.execute("SELECT source_org FROM mpi_sources WHERE source = ?", (source,))
            self._link(tx, source, org[0][0], new, "manual", by, reason)
            self._history(tx, by, "unlink", source=source, golden=old, other=new, reason=reason)
            self._refresh_golden(tx, new)
            self._refresh_golden(tx, old)
        return new

    def merge(self, retire: str, into: str, *, by: str, reason: str) -> None:
        """Every source of golden ``retire`` joins golden ``into``; ``retire`` is deleted
        (its history stays). Undo with :meth:`unlink` per source."""
        self._require_reason(reason)
        if retire == into:
            raise FhirError(Category.INVALID, "cannot merge a record into itself / 不能合并到自身")
        with self.repo.transaction() as tx:
            moving = tx.execute("SELECT source, source_org FROM mpi_sources WHERE golden = ?",
                                (retire,))
            if not moving or not tx.execute("SELECT 1 FROM mpi_sources WHERE golden = ?",
                                            (into,)):
                raise FhirError(Category.NOT_FOUND,
                                "both must be golden records / 两者都必须是主索引记录")
            if pair_key(f"Patient/{retire}", f"Patient/{into}") in self._certainly_not(
                tx, [f"Patient/{retire}", f"Patient/{into}"]
            ):
                raise FhirError(Category.CONFLICT, "this pair was marked certainly-not / "
                                "该对记录已被标记为确定不是同一人")
            for source, org in moving:
                self._link(tx, source, org, into, "manual", by, reason)
            self._history(tx, by, "merge", golden=into, other=retire, reason=reason)
            self._refresh_golden(tx, into)
            self._refresh_golden(tx, retire)

    def merge_by_identifiers(
        self, surviving: tuple[str, str], merged: Iterable[tuple[str, str]], *, by: str,
        reason: str,
    ) -> bool:
        """An HL7 v2 merge (ADT^A40): the records carrying ``merged`` identifiers join the
        golden record of the one carrying ``surviving``. False if a side is unknown."""
        from huitong.fhir.search.parse import parse_search

        def golden_for(system: str, value: str) -> str | None:
            page = self.repo.search(parse_search("Patient", [("identifier", f"{system}|{value}")]))
            for found in page.matches:
                golden = self.golden_of(found.id)
                if golden:
                    return golden
            return None

        into = golden_for(*surviving)
        if into is None:
            return False
        done = False
        for system, value in merged:
            retire = golden_for(system, value)
            if retire and retire != into:
                self.merge(retire, into, by=by, reason=reason)
                done = True
        return done

    def mark_certainly_not(self, a: str, b: str, *, by: str, reason: str) -> None:
        self._require_reason(reason)
        with self.repo.transaction() as tx:
            self._mark_not(tx, a, b, by, reason)

    def _mark_not(self, tx: Transaction, a: str, b: str, by: str, reason: str) -> None:
        x, y = sorted((a, b))
        tx.execute(
            "INSERT INTO mpi_certainly_not (a, b, decided_by, decided_at, reason) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (a, b) DO NOTHING",
            (x, y, by, self.clock(), reason),
        )
        self._history(tx, by, "certainly-not", source=x, other=y, reason=reason)

    def decide_review(self, item_id: int, *, accept: bool, by: str, reason: str) -> None:
        """Settle a review item: link the source to the proposed golden record, or mark the
        pair certainly-not (never proposed again)."""
        self._require_reason(reason)
        rows = self.repo.query("SELECT source, golden, status FROM mpi_review WHERE id = ?",
                               (item_id,))
        if not rows:
            raise FhirError(Category.NOT_FOUND, f"no review item {item_id} / 没有该待审核项")
        source, golden, status = rows[0]
        if status != "open":
            raise FhirError(Category.CONFLICT, f"review item {item_id} is already {status} / "
                            "该项已处理")
        if accept:
            self.link(source, golden, by=by, reason=reason)
        else:
            self.mark_certainly_not(source, f"Patient/{golden}", by=by, reason=reason)
        with self.repo.transaction() as tx:
            tx.execute("UPDATE mpi_review SET status = ?, decided_at = ?, decided_by = ?, "
                       "reason = ? WHERE id = ?",
                       ("linked" if accept else "rejected", self.clock(), by, reason, item_id))

    # -- demographic search (PDQm-style) ----------------------------------------------------
    def search(
        self, q: str, *, birth_date: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Golden records found by one search text, best first: a resident ID number (18 or
        15 digits), a phone number, ``system|value`` of any identifier, or a name in
        characters (simplified or traditional), pinyin in either order, or a homophone —
        looked up through the MPI's indexed keys, never a scan. ``birth_date``
        (``YYYY-MM-DD``) narrows a name search; a swapped day and month or one mistyped
        digit still counts, as in matching. Each result says how it was found."""
        keys, how = _search_keys(q)
        if not keys:
            return []
        wanted_birth = "".join(ch for ch in birth_date or "" if ch.isdigit())
        query_name = parse_name(text=q.strip()) if how == "name" else None
        if query_name is not None and len(wanted_birth) == 8:
            # A name with a birth date: the blocking keys that combine them (day and month
            # in either order; the year alone for a mistyped day) are far more selective
            # than the name, so a common name is not fetched in thousands.
            probe = IdentityRecord(source="", names=(query_name,), birth=wanted_birth)
            keys = sorted(k for k in blocking_keys(probe) if k.startswith(("nb:", "fy:")))
        marks = ", ".join("?" * len(keys))
        rows = self.repo.query(
            f"SELECT DISTINCT k.source, s.golden, r.record FROM mpi_keys k "
            f"LEFT JOIN mpi_sources s ON s.source = k.source "
            f"LEFT JOIN mpi_records r ON r.source = k.source "
            f"WHERE k.key IN ({marks}) ORDER BY k.source LIMIT 500",
            tuple(keys),
        )
        found: dict[str, dict[str, Any]] = {}
        for source, golden, text in rows:
            record = record_from_json(text) if text else None
            if wanted_birth and (record is None or date_level(record.birth, wanted_birth)
                                 not in (0, 1, 2)):
                continue
            kind = how
            if query_name is not None and record is not None:
                kind = _name_kind(query_name, record)
            key = golden or source
            hit = found.setdefault(key, {"golden": f"Patient/{golden}" if golden else None,
                                         "sources": [], "matchedBy": kind})
            hit["sources"].append(source)
            if _RANK[kind] < _RANK[hit["matchedBy"]]:
                hit["matchedBy"] = kind  # the best way any of its sources was found
        rank = _RANK
        ordered = sorted(found.values(), key=lambda h: (rank[h["matchedBy"]], h["golden"] or ""))
        out = []
        for hit in ordered[:limit]:
            if hit["golden"]:
                patient = self._read_or_none("Patient", hit["golden"].removeprefix("Patient/"))
                if patient is not None and not patient.deleted:
                    res = patient.resource
                    hit["name"] = [n.get("text") or "".join([n.get("family", ""),
                                                             *n.get("given", [])])
                                   for n in res.get("name", []) if isinstance(n, dict)]
                    hit["gender"] = res.get("gender")
                    hit["birthDate"] = res.get("birthDate")
            out.append(hit)
        return out

    def golden_patients(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The current golden Patients of ``ids`` in one query (deleted ones left out)."""
        from huitong.fhir.search.parse import parse_search

        wanted = [i for i in dict.fromkeys(ids) if i and "," not in i]
        if not wanted:
            return {}
        if len(wanted) <= 3:
            # $match usually has one or two hits: a primary-key read each is cheaper than
            # the search machinery (measured at 1M identities: 1.3 vs 2.1 ms at p50).
            found = {}
            for gid in wanted:
                stored = self._read_or_none("Patient", gid)
                if stored is not None and not stored.deleted:
                    found[gid] = stored.resource
            return found
        page = self.repo.search(parse_search(
            "Patient", [("_id", ",".join(wanted)), ("_count", str(len(wanted)))]))
        return {m.id: m.resource for m in page.matches}

    # -- $match -----------------------------------------------------------------------
    def match(self, patient: dict[str, Any], *, count: int = 10,
              only_certain: bool = False) -> list[tuple[str, float, str, dict[str, Any]]]:
        """Golden records matching ``patient`` (not stored): (golden id, probability 0-1,
        grade, evidence), best first — the data behind ``Patient/$match``."""
        record = record_from_patient(patient, source_org=_org_of(patient))
        keys = sorted(blocking_keys(record))
        best: dict[str, tuple[float, str, dict[str, Any]]] = {}
        for other, golden in fetch_candidates(self.repo.query, keys, read=self._read_or_none):
            if golden is None:
                continue
            scored = score_pair(self.model, record, other)
            if scored.grade == "certainly-not":
                continue
            if golden not in best or scored.probability > best[golden][0]:
                best[golden] = (scored.probability, scored.grade, explain(scored))
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        if only_certain:
            ranked = [r for r in ranked if r[1][1] == "certain"]
        return [(g, p, grade, ev) for g, (p, grade, ev) in ranked[:count]]


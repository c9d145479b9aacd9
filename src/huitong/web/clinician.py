"""The clinician workspace: find a patient, see the whole person, open any resource.

    GET /app/clinician?q=&kind=        patient search (name, resident ID, phone, identifier)
    GET /app/patients/{id}             the overview across institutions
    GET /app/resources/{type}/{id}     one resource as stored (JSON), e.g. from a message

Reads go through the services only: the patient finder (FHIR search, plus the identity
service's name search — pinyin, traditional characters, homophones — when it runs) and
``Repository.read`` / ``Repository.everything``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from huitong.access.policy import decide
from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository, StoredResource
from huitong.web.access_pages import patient_context, render_restricted, restricted_reason
from huitong.web.charts import Band, Chart, Point, Series
from huitong.web.display import format_when, reference_parts
from huitong.web.patient_record import PatientRecord, build_record
from huitong.web.patient_search import SearchKind, classify
from huitong.web.rendering import View
from huitong.web.services import FhirPatientFinder
from huitong.web.site import Site
from huitong.web.vitals import LabGroup

__all__ = [
    "Person",
    "is_golden",
    "load_person",
    "patient_overview",
    "patient_search",
    "record_charts",
    "resource_page",
]

SEARCH_LIMIT = 50
BP_TABLE_ROWS = 100  # the chart shows them all; the table is for reading recent values
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_EVERYTHING_PAGE = 1000
_EVERYTHING_MAX = 20_000  # beyond this an overview page is no longer an overview
GOLDEN_TAG_SYSTEM = "urn:huitong:mpi"


def _not_found(view: View) -> FhirError:
    return FhirError(Category.NOT_FOUND, view.t("error.no_such_resource"))


async def patient_search(site: Site, request: Request, view: View) -> Response:
    text = request.query_params.get("q", "").strip()
    kind_raw = request.query_params.get("kind", SearchKind.AUTO.value)
    results: list[StoredResource] | None = None
    problem = ""
    status = 200
    try:
        kind = SearchKind(kind_raw)
    except ValueError:
        kind, problem, status = SearchKind.AUTO, view.t("search.bad_kind"), 400
    if text and not problem:
        finder = site.services.finder_for(site.repo(view))
        try:
            results = await site.audited(
                request, view, "search-type", "Patient", None,
                lambda: finder.find_patients(text, kind, limit=SEARCH_LIMIT),
                [("page", "clinician-search"), ("kind", kind.value)])
        except FhirError as err:
            if err.category is not Category.INVALID:
                raise
            problem, status = view.pick(err.message), 400
    hidden: list[str] = []
    if results is not None and view.who is not None and not problem:
        hidden = await site.call(hidden_matches, site, text, kind, {r.id for r in results})
    found = sorted(results or [], key=lambda r: not is_golden(r.resource))
    rows = [(build_record(r.resource, [], site.today(), view.lang).demographics,
             is_golden(r.resource)) for r in found]
    return site.pages.render(
        view, "clinician_search.html", status, text=text, kind=kind.value,
        kinds=[k.value for k in SearchKind], rows=rows, searched=results is not None,
        problem=problem, section="clinician", hidden=hidden,
        pinyin=not isinstance(site.services.finder, FhirPatientFinder),
    )


def hidden_matches(site: Site, text: str, kind: SearchKind, visible: set[str]) -> list[str]:
    """Ids of Patients matching an exact resident ID number or identifier that the
    signed-in clinician may not see (yet). Only for exact identifiers: whoever typed the
    number already holds it (an ID card in the emergency room), and they need a way to the
    share-code and break-glass forms; a name or phone search reveals nothing hidden."""
    if kind is SearchKind.AUTO:
        kind = classify(text)
    if kind not in (SearchKind.RESIDENT_ID, SearchKind.IDENTIFIER):
        return []
    found = FhirPatientFinder(site.services.repo).find_patients(text, kind, limit=SEARCH_LIMIT)
    return [r.id for r in found if r.id not in visible and not is_golden(r.resource)]


@dataclass(frozen=True, slots=True)
class Person:
    """A Patient and everything known about the person: with a golden (master) record,
    the compartments of all its linked source records; with a source record, the golden
    records that include it (to offer the combined view)."""

    patient: StoredResource
    resources: list[dict[str, Any]]
    sources: list[str]  # ids of the linked source records (golden records only)
    golden: list[str]  # ids of golden records linking to this one (source records only)


def is_golden(resource: dict[str, Any]) -> bool:
    """Whether a Patient is the identity service's golden record (tag ``urn:huitong:mpi|
    golden``): it stands for its linked source records."""
    tags = resource.get("meta", {}).get("tag", [])
    return any(t.get("system") == GOLDEN_TAG_SYSTEM and t.get("code") == "golden" for t in tags)


def _compartment(repo: Repository, patient_id: str, seen: set[str],
                 into: list[dict[str, Any]]) -> None:
    offset = 0
    while offset < _EVERYTHING_MAX:
        page = repo.everything(patient_id, count=_EVERYTHING_PAGE, offset=offset)
        for stored in [*page.matches, *page.included]:
            if stored.reference not in seen:
                seen.add(stored.reference)
                into.append(stored.resource)
        if not page.has_next:
            break
        offset += len(page.matches)


def load_person(repo: Repository, patient_id: str) -> Person:
    patient = repo.read("Patient", patient_id)
    resource = patient.resource
    resources: list[dict[str, Any]] = []
    seen: set[str] = set()
    _compartment(repo, patient_id, seen, resources)
    sources: list[str] = []
    golden: list[str] = []
    if is_golden(resource):
        for link in resource.get("link", []):
            parts = reference_parts(link.get("other"))
            if parts and parts[0] == "Patient" and parts[1] != patient_id:
                sources.append(parts[1])
                try:
                    _compartment(repo, parts[1], seen, resources)
                except FhirError as err:  # a source deleted since: show the rest
                    if err.category not in (Category.NOT_FOUND, Category.GONE):
                        raise
    else:
        query = parse_search("Patient", [("link", f"Patient/{patient_id}"), ("_count", "10")])
        golden = [m.id for m in repo.search(query).matches if is_golden(m.resource)]
    return Person(patient, resources, sources, golden)


def access_basis(site: Site, view: View, patient: dict[str, Any]) -> str:
    """Why the signed-in clinician may see this patient (the policy's reason: own
    organization, referral, consent, share code or break-glass), '' without sign-in."""
    who = view.who
    if who is None:
        return ""
    context = patient_context(site.services.repo, patient)
    decision = decide(who.principal, "read", "Patient", context, now=site.services.clock(),
                      settings=site.services.policy)
    return decision.reason.en if view.lang == "en" else decision.reason.zh


def _tone(code: str) -> str:
    return re.sub(r"[^A-Za-z0-9\-]", "-", code)


def _lab_chart(group: LabGroup, view: View) -> Chart:
    points = group.chartable
    bands = [Band(group.low, group.high, view.t("chart.reference_range", range=group.range_text))
             ] if group.low is not None or group.high is not None else []
    return Chart(
        chart_id=f"lab-{_tone(group.code)}",
        title=view.t("chart.lab.title", name=group.name),
        description=view.t("chart.lab.desc", name=group.name, n=len(points),
                           first=format_when(points[0].at, with_time=False) if points else "",
                           last=format_when(points[-1].at, with_time=False) if points else "",
                           range=group.range_text or "—"),
        unit=group.unit,
        series=[Series(group.name, [Point(p.at, p.value) for p in points
                                    if p.at is not None and p.value is not None])],
        bands=bands, height=200,
    )


def record_charts(record: PatientRecord, view: View) -> dict[str, Chart]:
    """The overview's charts: blood pressure, glucose, and a trend per repeated lab test."""
    t = view.t
    home_note = t("chart.home_device")
    bp = record.blood_pressure
    charts: dict[str, Chart] = {}
    charts["bp"] = Chart(
        chart_id="chart-bp",
        title=t("chart.bp.title"),
        description=t("chart.bp.desc", n=len(bp), home=sum(1 for r in bp if r.home),
                      first=bp[0].when if bp else "", last=bp[-1].when if bp else ""),
        unit="mmHg",
        series=[
            Series(t("chart.systolic"), [
                Point(r.at, r.systolic, f"{home_note} {r.source}".strip() if r.home else "",
                      r.home) for r in bp if r.systolic is not None], tone=0),
            Series(t("chart.diastolic"), [
                Point(r.at, r.diastolic, f"{home_note} {r.source}".strip() if r.home else "",
                      r.home) for r in bp if r.diastolic is not None], tone=1),
        ],
        bands=[Band(None, 140, t("chart.bp.threshold", value=140)),
               Band(None, 90, t("chart.bp.threshold", value=90))],
    )
    glucose = record.glucose
    fasting = next((g for g in record.labs if g.code == "15074-8" and g.low is not None), None)
    charts["glucose"] = Chart(
        chart_id="chart-glucose",
        title=t("chart.glucose.title"),
        description=t("chart.glucose.desc", n=len(glucose),
                      home=sum(1 for g in glucose if g.home),
                      first=glucose[0].when if glucose else "",
                      last=glucose[-1].when if glucose else ""),
        unit="mmol/L",
        series=[Series(t("chart.glucose.series"), [
            Point(g.at, g.mmol_per_l, f"{home_note} {g.source}".strip() if g.home else g.name,
                  g.home) for g in glucose], tone=2)],
        bands=[Band(fasting.low, fasting.high,
                    t("chart.reference_range", range=fasting.range_text))] if fasting else [],
    )
    for group in record.labs:
        if len(group.chartable) >= 2:
            charts[f"lab:{group.code}"] = _lab_chart(group, view)
    return charts


async def patient_overview(site: Site, request: Request, view: View) -> Response:
    patient_id = request.path_params["patient_id"]
    if not _ID.fullmatch(patient_id):
        raise _not_found(view)
    today = site.today()
    repo = site.repo(view)

    def prepare() -> tuple[Person, PatientRecord, dict[str, Chart], str]:
        # Reading and shaping a long record is CPU work: keep it off the event loop.
        person = load_person(repo, patient_id)
        record = build_record(person.patient.resource, person.resources, today, view.lang,
                              linked=set(person.sources))
        basis = access_basis(site, view, person.patient.resource)
        return person, record, record_charts(record, view), basis

    try:
        person, record, charts, basis = await site.audited(request, view, "read", "Patient",
                                                           patient_id, prepare)
    except FhirError as err:
        # Hidden from this person (authentication on): say why and offer the lawful ways in.
        if err.category is not Category.NOT_FOUND or view.who is None:
            raise
        reason = await site.call(restricted_reason, site.services.repo, view.who.principal,
                                 patient_id, site.services.clock(), site.services.policy)
        if reason is None:
            raise
        return render_restricted(site, view, patient_id, reason)
    return site.pages.render(
        view, "patient.html", record=record, charts=charts,
        person=person, golden=is_golden(person.patient.resource), section="clinician",
        bp_rows=BP_TABLE_ROWS,
        access_enabled=site.services.access is not None, access_basis=basis,
    )


async def resource_page(site: Site, request: Request, view: View) -> Response:
    rtype = request.path_params["resource_type"]
    rid = request.path_params["resource_id"]
    if rtype not in resource_types() or not _ID.fullmatch(rid):
        raise _not_found(view)
    repo = site.repo(view)
    stored = await site.audited(request, view, "read", rtype, rid, lambda: repo.read(rtype, rid))
    pretty = orjson.dumps(stored.resource, option=orjson.OPT_INDENT_2).decode()
    patient_id = rid if rtype == "Patient" else None
    return site.pages.render(view, "resource.html", stored=stored, pretty=pretty,
                             patient_id=patient_id, section="clinician")

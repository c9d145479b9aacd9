"""The whole person across institutions, as a page shows it: one :class:`PatientRecord`
built from a Patient and the resources of its compartment (``Patient/$everything``).

Pure: :func:`build_record` reads resource dicts and returns data. Where a resource came
from (its institution) is the Organization it names itself — ``Encounter.serviceProvider``,
an Organization ``performer``, ``DocumentReference.custodian``, ``Patient.managingOrganization``
— else the institution of the encounter it belongs to.
https://hl7.org/fhir/R4/patient-operation-everything.html
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from huitong.web.display import (
    age_on,
    concept_text,
    format_when,
    human_name,
    parse_when,
    reference_parts,
)
from huitong.web.vitals import (
    BloodPressure,
    GlucoseReading,
    LabGroup,
    blood_pressure_readings,
    glucose_readings,
    lab_groups,
)

__all__ = [
    "Allergy",
    "Demographics",
    "Document",
    "Identity",
    "Imaging",
    "Institution",
    "Medication",
    "PatientRecord",
    "Problem",
    "Visit",
    "build_record",
]

Resource = dict[str, Any]
_BADGE_TONES = 8


@dataclass(frozen=True, slots=True)
class Institution:
    reference: str  # Organization/<id>
    name: str
    tone: int  # badge colour class b0..b7, stable within one page
    resources: int = 0


@dataclass(frozen=True, slots=True)
class Identity:
    """One identifier of the person: which kind (``label``), the value, its system and the
    organization that assigned it; ``old`` for identifiers no longer in use."""

    label: str
    value: str
    system: str
    assigner: str
    old: bool


@dataclass(frozen=True, slots=True)
class Demographics:
    id: str
    name: str
    gender: str
    birth_date: str
    age: int | None
    phones: list[str]
    addresses: list[str]
    identities: list[Identity]
    links: list[tuple[str, str]]  # (Patient.link.type, reference): linked source records
    managing: str


@dataclass(frozen=True, slots=True)
class Visit:
    when: datetime | None
    end: datetime | None
    kind: str  # Encounter.class code (AMB, IMP, EMER, HH, VR…)
    title: str
    institution: Institution | None
    practitioner: str
    reasons: list[str]
    contents: dict[str, int]  # resource type → how many belong to this encounter
    reference: str


@dataclass(frozen=True, slots=True)
class Problem:
    text: str
    code: str
    status: str
    onset: str
    recorded: str
    institution: Institution | None


@dataclass(frozen=True, slots=True)
class Medication:
    name: str
    last: str
    times: int
    status: str
    dosage: str
    institution: Institution | None


@dataclass(frozen=True, slots=True)
class Allergy:
    text: str
    category: str
    criticality: str
    reactions: list[str]
    recorded: str
    status: str


@dataclass(frozen=True, slots=True)
class Imaging:
    started: str
    modalities: list[str]
    description: str
    series: int | None
    instances: int | None
    institution: Institution | None
    reference: str


@dataclass(frozen=True, slots=True)
class Document:
    date: str
    title: str
    kind: str
    institution: Institution | None
    reference: str


@dataclass(slots=True)
class PatientRecord:
    demographics: Demographics
    institutions: list[Institution]
    visits: list[Visit] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    medications: list[Medication] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    immunizations: list[tuple[str, str, Institution | None]] = field(default_factory=list)
    labs: list[LabGroup] = field(default_factory=list)
    blood_pressure: list[BloodPressure] = field(default_factory=list)
    glucose: list[GlucoseReading] = field(default_factory=list)
    imaging: list[Imaging] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    resource_count: int = 0


class _Institutions:
    """Organization references → :class:`Institution`, named from the Organization
    resources at hand, else the reference's display, else the id."""

    def __init__(self, organizations: dict[str, Resource]) -> None:
        self.organizations = organizations
        self.order: list[str] = []
        self.names: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def note(self, reference: Any, count: bool = True) -> Institution | None:
        parts = reference_parts(reference)
        if parts is None or parts[0] != "Organization":
            return None
        ref = f"Organization/{parts[1]}"
        if ref not in self.names:
            org = self.organizations.get(parts[1], {})
            display = reference.get("display") if isinstance(reference, dict) else None
            self.names[ref] = str(org.get("name") or display or parts[1])
            self.order.append(ref)
        if count:
            self.counts[ref] += 1
        return self.get(ref)

    def get(self, ref: str | None) -> Institution | None:
        if ref is None or ref not in self.names:
            return None
        return Institution(ref, self.names[ref], self.order.index(ref) % _BADGE_TONES,
                           self.counts[ref])

    def all(self) -> list[Institution]:
        found = [self.get(ref) for ref in self.order if self.counts[ref]]
        return sorted((i for i in found if i), key=lambda i: (-i.resources, i.name))


def _own_organization(resource: Resource) -> Any:
    """The Organization reference a resource names for itself, if any."""
    rtype = resource.get("resourceType")
    if rtype == "Encounter":
        return resource.get("serviceProvider")
    if rtype == "DocumentReference" and resource.get("custodian"):
        return resource["custodian"]
    if rtype == "Patient":
        return resource.get("managingOrganization")
    candidates: list[Any] = []
    for performer in resource.get("performer", []) if isinstance(
            resource.get("performer"), list) else []:
        candidates.append(performer.get("actor", performer) if isinstance(performer, dict)
                          else None)
    candidates += resource.get("author", []) if rtype == "DocumentReference" else []
    for candidate in candidates:
        parts = reference_parts(candidate)
        if parts and parts[0] == "Organization":
            return candidate
    return None


def _encounter_of(resource: Resource) -> str | None:
    ref = resource.get("encounter")
    if resource.get("resourceType") == "DocumentReference":
        context = resource.get("context", {})
        refs = context.get("encounter", []) if isinstance(context, dict) else []
        ref = refs[0] if refs else None
    parts = reference_parts(ref)
    return parts[1] if parts and parts[0] == "Encounter" else None


def _identities(patient: Resource, lang: str) -> list[Identity]:
    found = []
    for ident in patient.get("identifier", []):
        if not isinstance(ident, dict) or not ident.get("value"):
            continue
        assigner = ident.get("assigner", {})
        found.append(Identity(
            label=concept_text(ident.get("type"), lang),
            value=str(ident["value"]),
            system=str(ident.get("system", "")),
            assigner=str(assigner.get("display", "")) if isinstance(assigner, dict) else "",
            old=ident.get("use") == "old" or bool(ident.get("period", {}).get("end")),
        ))
    return found


def _demographics(patient: Resource, today: date, lang: str) -> Demographics:
    phones = [str(t["value"]) for t in patient.get("telecom", [])
              if isinstance(t, dict) and t.get("value") and t.get("system") in ("phone", "sms")]
    addresses = [str(a.get("text") or " ".join(
        str(x) for x in [a.get("state"), a.get("city"), a.get("district"), *a.get("line", [])]
        if x)) for a in patient.get("address", []) if isinstance(a, dict)]
    links = [(str(link.get("type", "")), str(link.get("other", {}).get("reference", "")))
             for link in patient.get("link", []) if isinstance(link, dict)]
    managing = patient.get("managingOrganization", {})
    return Demographics(
        id=str(patient.get("id", "")),
        name=human_name(patient.get("name")),
        gender=str(patient.get("gender", "unknown")),
        birth_date=str(patient.get("birthDate", "")),
        age=age_on(patient.get("birthDate"), today),
        phones=phones,
        addresses=[a for a in addresses if a],
        identities=_identities(patient, lang),
        links=links,
        managing=str(managing.get("display", "")) if isinstance(managing, dict) else "",
    )


def _visit(encounter: Resource, institution: Institution | None, contents: dict[str, int],
           lang: str) -> Visit:
    period = encounter.get("period", {})
    kinds = [concept_text(t, lang) for t in encounter.get("type", [])]
    klass = encounter.get("class", {})
    practitioners = [p.get("individual", {}).get("display", "")
                     for p in encounter.get("participant", []) if isinstance(p, dict)]
    reasons = [concept_text(r, lang) for r in encounter.get("reasonCode", [])]
    reasons += [r.get("display", "") for r in encounter.get("reasonReference", [])
                if isinstance(r, dict) and r.get("display")]
    return Visit(
        when=parse_when(period.get("start")),
        end=parse_when(period.get("end")),
        kind=str(klass.get("code", "")) if isinstance(klass, dict) else "",
        title=next((k for k in kinds if k), "") or concept_text(klass, lang),
        institution=institution,
        practitioner=next((p for p in practitioners if p), ""),
        reasons=[r for r in reasons if r],
        contents=contents,
        reference=f"Encounter/{encounter.get('id')}",
    )


def build_record(patient: Resource, resources: list[Resource], today: date,
                 lang: str = "zh-CN", *, linked: set[str] | None = None) -> PatientRecord:
    """Everything a clinician sees about one person. ``resources`` are the compartment's
    resources and those they reference (Organizations, Devices…), in any order. ``linked``
    names source Patients (of a golden record) among them: their identifiers join the
    person's, and the institutions that registered them count as sources."""
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for resource in resources:
        by_type[str(resource.get("resourceType"))].append(resource)
    institutions = _Institutions({str(o.get("id")): o for o in by_type["Organization"]})
    devices = {str(d.get("id")): d for d in by_type["Device"]}
    encounters = {str(e.get("id")): e for e in by_type["Encounter"]}

    # Attribute every clinical resource to an institution, encounters first.
    encounter_org: dict[str, Institution | None] = {
        eid: institutions.note(e.get("serviceProvider")) for eid, e in encounters.items()
    }
    institutions.note(patient.get("managingOrganization"))
    sources = [r for r in by_type["Patient"] if str(r.get("id")) in (linked or set())]
    for source in sources:
        institutions.note(source.get("managingOrganization"))
    origin: dict[int, Institution | None] = {}
    contents: dict[str, Counter[str]] = defaultdict(Counter)
    clinical = [r for t, rs in by_type.items() for r in rs
                if t not in ("Patient", "Encounter", "Organization", "Practitioner",
                             "PractitionerRole", "Location", "Device", "Medication")]
    for resource in clinical:
        own = _own_organization(resource)
        encounter_id = _encounter_of(resource)
        if encounter_id:
            contents[encounter_id][str(resource["resourceType"])] += 1
        if own is not None:
            origin[id(resource)] = institutions.note(own)
        else:
            inherited = encounter_org.get(encounter_id) if encounter_id else None
            if inherited is not None:
                institutions.counts[inherited.reference] += 1
            origin[id(resource)] = inherited

    # Counts are final only now: re-read each institution so its badge shows them.
    def inst(resource: Resource) -> Institution | None:
        found = origin.get(id(resource))
        return institutions.get(found.reference) if found else None

    def visit_org(encounter_id: str) -> Institution | None:
        found = encounter_org.get(encounter_id)
        return institutions.get(found.reference) if found else None

    demographics = _demographics(patient, today, lang)
    known = {(i.system, i.value) for i in demographics.identities}
    for source in sources:
        for identity in _identities(source, lang):
            if (identity.system, identity.value) not in known:
                known.add((identity.system, identity.value))
                demographics.identities.append(identity)
    record = PatientRecord(
        demographics=demographics,
        institutions=institutions.all(),
        resource_count=len(clinical) + len(encounters),
    )
    record.visits = sorted(
        (_visit(e, visit_org(eid), dict(contents.get(eid, {})), lang)
         for eid, e in encounters.items()),
        key=lambda v: v.when.timestamp() if v.when else 0, reverse=True,
    )
    record.problems = sorted(
        (Problem(
            text=concept_text(c.get("code"), lang),
            code=next((str(x.get("code")) for x in c.get("code", {}).get("coding", [])), ""),
            status=concept_text(c.get("clinicalStatus"), lang),
            onset=format_when(c.get("onsetDateTime") or c.get("onsetPeriod", {}).get("start"),
                              with_time=False),
            recorded=format_when(c.get("recordedDate"), with_time=False),
            institution=inst(c),
        ) for c in by_type["Condition"]),
        key=lambda p: p.recorded, reverse=True,
    )
    record.medications = _medications(by_type["MedicationRequest"], lang, inst)
    record.allergies = [
        Allergy(
            text=concept_text(a.get("code"), lang),
            category=", ".join(str(c) for c in a.get("category", [])),
            criticality=str(a.get("criticality", "")),
            reactions=[concept_text(m, lang) for r in a.get("reaction", [])
                       for m in r.get("manifestation", [])],
            recorded=format_when(a.get("recordedDate"), with_time=False),
            status=concept_text(a.get("clinicalStatus"), lang),
        ) for a in by_type["AllergyIntolerance"]
    ]
    record.immunizations = sorted(
        ((format_when(i.get("occurrenceDateTime"), with_time=False),
          concept_text(i.get("vaccineCode"), lang), inst(i))
         for i in by_type["Immunization"]), key=lambda x: x[0], reverse=True,
    )
    observations = by_type["Observation"]
    record.labs = lab_groups(observations, lang)
    record.blood_pressure = blood_pressure_readings(observations, devices, lang)
    record.glucose = glucose_readings(observations, devices)
    record.imaging = [
        Imaging(
            started=format_when(s.get("started")),
            modalities=sorted({str(m.get("code")) for m in s.get("modality", [])
                               if isinstance(m, dict)} | {
                str(se.get("modality", {}).get("code")) for se in s.get("series", [])
                if isinstance(se, dict) and se.get("modality")}),
            description=str(s.get("description", "")),
            series=s.get("numberOfSeries"),
            instances=s.get("numberOfInstances"),
            institution=inst(s),
            reference=f"ImagingStudy/{s.get('id')}",
        ) for s in sorted(by_type["ImagingStudy"], key=lambda s: str(s.get("started", "")),
                          reverse=True)
    ]
    record.documents = [
        Document(
            date=format_when(d.get("date")),
            title=str(d.get("description") or next(
                (c.get("attachment", {}).get("title") for c in d.get("content", [])
                 if isinstance(c, dict) and c.get("attachment", {}).get("title")), "")
                or concept_text(d.get("type"), lang)),
            kind=concept_text(d.get("type"), lang),
            institution=inst(d),
            reference=f"DocumentReference/{d.get('id')}",
        ) for d in sorted(by_type["DocumentReference"], key=lambda d: str(d.get("date", "")),
                          reverse=True)
    ]
    record.institutions = institutions.all()
    return record


def _medications(requests: list[Resource], lang: str, inst: Any) -> list[Medication]:
    """One line per medicine: the latest prescription, how often it was prescribed."""
    groups: dict[str, list[Resource]] = defaultdict(list)
    for request in requests:
        name = concept_text(request.get("medicationCodeableConcept"), lang) or str(
            request.get("medicationReference", {}).get("display", ""))
        groups[name or "?"].append(request)
    found = []
    for name, items in groups.items():
        items.sort(key=lambda r: str(r.get("authoredOn", "")), reverse=True)
        latest = items[0]
        dosage = next((str(d.get("text")) for d in latest.get("dosageInstruction", [])
                       if isinstance(d, dict) and d.get("text")), "")
        found.append(Medication(
            name=name, last=format_when(latest.get("authoredOn"), with_time=False),
            times=len(items), status=str(latest.get("status", "")), dosage=dosage,
            institution=inst(latest),
        ))
    found.sort(key=lambda m: m.last, reverse=True)
    return sorted(found, key=lambda m: m.status != "active")  # stable: active ones first


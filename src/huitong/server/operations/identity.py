"""Identity operations over the master patient index.

- ``Patient/$match`` — https://hl7.org/fhir/R4/patient-operation-match.html: the golden
  records that match a Patient resource, as a searchset Bundle with ``search.score`` (0–1)
  and the match-grade extension (certain / probable / possible), best first; ``count`` caps
  the results and ``onlyCertainMatches`` keeps only certain ones (at most one, per the spec
  a server "should" return then).
- ``Patient/$ihe-pix`` — IHE PIXm (ITI-83): the identifiers and Patient references in other
  domains for one ``sourceIdentifier`` (``system|value``), optionally limited to
  ``targetSystem`` values, answered as Parameters (``targetIdentifier``, ``targetId``).

Both NOT_SUPPORTED when the identity service is off (HUITONG_MPI=off).
"""

from __future__ import annotations

from typing import Any

from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.fhir.validation import validate_resource
from huitong.server.operations.parameters import operation_inputs
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse

__all__ = ["ihe_pix", "match"]

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


def _identity(ctx: ServerContext) -> Any:
    if ctx.identity is None:
        raise FhirError(Category.NOT_SUPPORTED,
                        "the master patient index is off on this server / 本服务器未启用主索引")
    return ctx.identity


def match(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    identity = _identity(ctx)
    inputs = operation_inputs(req)
    resources = [v for k, v in inputs if k == "resource"]
    if len(resources) != 1 or not isinstance(resources[0], dict):
        raise FhirError(Category.INVALID, "$match needs exactly one 'resource' (a Patient)")
    patient = resources[0]
    if patient.get("resourceType") != "Patient":
        raise FhirError(Category.INVALID, "$match: the resource must be a Patient")
    validate_resource(patient)
    count = 10
    only_certain = False
    for k, v in inputs:
        if k == "count":
            try:
                count = max(1, min(int(v), 100))
            except (TypeError, ValueError):
                raise FhirError(Category.INVALID, "count must be a positive integer") from None
        elif k == "onlyCertainMatches":
            only_certain = str(v).lower() == "true"
    hits = identity.match(patient, count=count, only_certain=only_certain)
    if only_certain:
        hits = hits[:1]
    # one query for every hit's golden Patient, not a read per hit
    patients = identity.golden_patients([h[0] for h in hits])
    entries = []
    for golden, probability, grade, _evidence in hits:
        if golden not in patients:
            continue  # retired between the match and the read
        entries.append({
            "fullUrl": f"{req.base_url}/Patient/{golden}",
            "resource": patients[golden],
            "search": {
                "mode": "match", "score": round(probability, 4),
                "extension": [{"url": MATCH_GRADE, "valueCode": grade}],
            },
        })
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, bundle)


def ihe_pix(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    identity = _identity(ctx)
    inputs = operation_inputs(req)
    sources = [str(v) for k, v in inputs if k == "sourceIdentifier"]
    if len(sources) != 1 or "|" not in sources[0]:
        raise FhirError(Category.INVALID,
                        "$ihe-pix needs one sourceIdentifier as system|value")
    targets = {str(v) for k, v in inputs if k == "targetSystem"}
    page = ctx.repo.search(parse_search("Patient", [("identifier", sources[0])]))
    if not page.matches:
        raise FhirError(Category.NOT_FOUND, "sourceIdentifier is not known")
    goldens = {g for m in page.matches if (g := identity.golden_of(m.id))}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for golden in sorted(goldens):
        for sid in [golden, *identity.sources_of(golden)]:
            stored = ctx.repo.read("Patient", sid)
            out.append({"name": "targetId", "valueReference": {"reference": f"Patient/{sid}"}})
            for ident in stored.resource.get("identifier", []):
                key = (ident.get("system", ""), ident.get("value", ""))
                if key in seen or f"{key[0]}|{key[1]}" == sources[0]:
                    continue
                if targets and key[0] not in targets:
                    continue
                seen.add(key)
                out.append({"name": "targetIdentifier", "valueIdentifier": ident})
    body: dict[str, Any] = {"resourceType": "Parameters"}
    if out:
        body["parameter"] = out
    return FhirResponse(200, body)

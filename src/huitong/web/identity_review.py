"""The identity review queue (operator console): probable and possible matches the identity
service would not link on its own, two records side by side with the evidence per field.

    GET  /app/operator/identity?status=open|linked|rejected&offset=
    POST /app/operator/identity/{item}    decision=link|not-same, reason=…   (CSRF)

"Link" moves the source record into the proposed golden record; "not the same person" marks
the pair certainly-not, so matching never proposes it again
(:meth:`~huitong.mpi.service.IdentityService.decide_review`; a reason is required and both
go into the link history with the operator's user id).

What an operator sees of the two records is the minimum needed to judge a match, masked
the way Chinese health-data practice masks personal information (GB/T 35273 de-identified
display): the first character of the name, the birth year, the region and last four digits
of a resident ID number, the last four digits of a phone number, the sending institution.
The evidence — agreement level and weight per compared field — carries the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository
from huitong.web.display import reference_parts
from huitong.web.forms import read_form
from huitong.web.rendering import APP_PATH, View
from huitong.web.site import Site

__all__ = ["MaskedRecord", "decide", "mask_id_number", "mask_name", "mask_phone",
           "masked_record", "queue_page"]  # fmt: skip

PAGE_SIZE = 20
STATUSES = ("open", "linked", "rejected")
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def mask_name(name: str) -> str:
    """``王小明`` → ``王**``; ``Wang Xiaoming`` → ``W*** X***``."""
    name = name.strip()
    if not name:
        return ""
    if " " in name:
        return " ".join(part[:1] + "***" for part in name.split())
    return name[:1] + "*" * (len(name) - 1)


def mask_id_number(value: str) -> str:
    """Region code and last four characters: ``110101********1234``."""
    if len(value) <= 10:
        return "*" * max(0, len(value) - 4) + value[-4:]
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """``13812345678`` → ``138****5678`` (China's +86 prefix dropped first)."""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) <= 4:
        return "****"
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:] if len(digits) > 7 else (
        "*" * (len(digits) - 4) + digits[-4:])


@dataclass(frozen=True, slots=True)
class MaskedRecord:
    reference: str
    found: bool
    name: str = ""
    gender: str = ""
    birth_year: str = ""
    resident_id: str = ""
    phone: str = ""
    institution: str = ""
    identifiers: int = 0


def _name_of(patient: dict[str, Any]) -> str:
    for name in patient.get("name", []):
        if name.get("text"):
            return str(name["text"])
        text = "".join([name.get("family", ""), *name.get("given", [])])
        if text:
            return text
    return ""


def _organization_name(repo: Repository, reference: str | None) -> str:
    parts = reference_parts(reference)
    if parts is None or parts[0] != "Organization":
        return reference or ""
    try:
        return str(repo.read("Organization", parts[1]).resource.get("name") or reference)
    except FhirError:
        return reference or ""


def masked_record(repo: Repository, reference: str) -> MaskedRecord:
    parts = reference_parts(reference)
    if parts is None or parts[0] != "Patient":
        return MaskedRecord(reference, False)
    try:
        patient = repo.read("Patient", parts[1]).resource
    except FhirError as err:
        if err.category in (Category.NOT_FOUND, Category.GONE):
            return MaskedRecord(reference, False)
        raise
    resident = next((i.get("value", "") for i in patient.get("identifier", [])
                     if i.get("system") == RESIDENT_ID_SYSTEM), "")  # fmt: skip
    phone = next((t.get("value", "") for t in patient.get("telecom", [])
                  if t.get("system") == "phone"), "")  # fmt: skip
    managing = patient.get("managingOrganization") or {}
    institution = managing.get("display") or _organization_name(repo, managing.get("reference"))
    return MaskedRecord(
        reference, True, name=mask_name(_name_of(patient)), gender=patient.get("gender", ""),
        birth_year=str(patient.get("birthDate", ""))[:4],
        resident_id=mask_id_number(resident) if resident else "",
        phone=mask_phone(phone) if phone else "", institution=institution,
        identifiers=len(patient.get("identifier", [])),
    )


@dataclass(frozen=True, slots=True)
class Pair:
    item: Any  # huitong.mpi.service.ReviewItem
    left: MaskedRecord
    right: MaskedRecord
    fields: list[dict[str, Any]]


def _pairs(site: Site, status: str, offset: int) -> tuple[list[Pair], int]:
    identity = site.services.identity
    assert identity is not None
    items, total = identity.review_queue(status=status, limit=PAGE_SIZE, offset=offset)
    repo = site.services.repo  # the identity service's own reading; shown masked
    pairs = []
    for item in items:
        other = item.matched_source or f"Patient/{item.golden}"
        fields = [f for f in (item.evidence or {}).get("fields", []) if isinstance(f, dict)]
        pairs.append(Pair(item, masked_record(repo, item.source), masked_record(repo, other),
                          fields))  # fmt: skip
    return pairs, total


async def queue_page(site: Site, request: Request, view: View) -> Response:
    if site.services.identity is None:
        return site.pages.render(view, "unavailable.html", feature="identity", connected=False,
                                 section="operator", subsection="identity")  # fmt: skip
    status = request.query_params.get("status", "open")
    if status not in STATUSES:
        raise FhirError(Category.INVALID, view.t("error.bad_status", value=status[:40]))
    raw = request.query_params.get("offset", "0")
    if not raw.isdigit() or len(raw) > 9:
        raise FhirError(Category.INVALID, view.t("error.bad_number", name="offset"))
    offset = int(raw)
    pairs, total = await site.call(_pairs, site, status, offset)
    done = request.query_params.get("done", "")
    result = request.query_params.get("result", "")
    return site.pages.render(
        view, "operator_identity.html", pairs=pairs, total=total, status=status,
        statuses=STATUSES, offset=offset, page_size=PAGE_SIZE,
        done=done if done.isdigit() else "", result=result if result in STATUSES else "",
        section="operator", subsection="identity",
    )


async def decide(site: Site, request: Request, view: View) -> Response:
    identity = site.services.identity
    if identity is None:
        raise FhirError(Category.UNAVAILABLE, view.t("feature.not_available"))
    raw = request.path_params["item_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise FhirError(Category.NOT_FOUND, view.t("identity.no_such_item"))
    fields = await read_form(request, view, site.services.secret)
    decision = fields.get("decision")
    if decision not in ("link", "not-same"):
        raise FhirError(Category.INVALID, view.t("identity.bad_decision"))
    reason = " ".join(fields.get("reason", "").split())[:500]
    if not reason:
        raise FhirError(Category.INVALID, view.t("identity.reason_required"))
    accept = decision == "link"
    await site.call(lambda: identity.decide_review(int(raw), accept=accept, by=site.actor(view),
                                                   reason=reason))  # fmt: skip
    result = "linked" if accept else "rejected"
    return RedirectResponse(f"{APP_PATH}/operator/identity?done={raw}&result={result}", 303)

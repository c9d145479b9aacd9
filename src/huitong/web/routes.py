"""The pages' routing table: :func:`web_routes` is what the application mounts.

Everything lives under ``/app`` (static files under ``/app/static``); any other path below
``/app`` answers the bilingual 404 page, never the API's OperationOutcome. Each page names
its :class:`~huitong.web.site.Audience`: with authentication on, clinician pages need a
clinician, operator pages a platform operator (see :mod:`huitong.web.site`).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from huitong.web import (
    access_pages,
    audit_pages,
    clinician,
    frames,
    identity_review,
    operator,
    portal,
    quality,
)
from huitong.web import signin as signin_pages
from huitong.web.rendering import APP_PATH, STATIC_PATH
from huitong.web.services import WebServices
from huitong.web.site import Audience, Handler, Site

__all__ = ["web_routes"]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def web_routes(services: WebServices) -> list[BaseRoute]:
    """The web pages over ``services``, to add to the application's routes."""
    site = Site(services)
    page = site.endpoint
    clin, oper = Audience.CLINICIAN, Audience.OPERATOR
    op = f"{APP_PATH}/operator"
    return [
        Route(APP_PATH, page(frames.home), methods=["GET"]),
        Route(f"{APP_PATH}/", page(frames.home), methods=["GET"]),
        Route(f"{APP_PATH}/signin", page(signin_pages.signin_form), methods=["GET"]),
        Route(f"{APP_PATH}/signin", page(signin_pages.signin_submit), methods=["POST"]),
        Route(f"{APP_PATH}/signout", page(signin_pages.signout), methods=["POST"]),
        Route(f"{APP_PATH}/clinician", page(clinician.patient_search, clin), methods=["GET"]),
        Route(f"{APP_PATH}/patients/{{patient_id}}", page(clinician.patient_overview, clin),
              methods=["GET"]),
        Route(f"{APP_PATH}/patients/{{patient_id}}/share-code",
              page(access_pages.redeem_share_code, clin), methods=["POST"]),
        Route(f"{APP_PATH}/patients/{{patient_id}}/break-glass",
              page(access_pages.break_glass, clin), methods=["POST"]),
        Route(f"{APP_PATH}/resources/{{resource_type}}/{{resource_id}}",
              page(clinician.resource_page, Audience.RECORD), methods=["GET"]),
        *_portal_routes(site),
        Route(op, page(frames.operator_home, oper), methods=["GET"]),
        Route(f"{op}/channels", page(operator.channels_page, oper), methods=["GET"]),
        Route(f"{op}/messages", page(operator.messages_page, oper), methods=["GET"]),
        Route(f"{op}/messages/{{message_id}}", page(operator.message_page, oper),
              methods=["GET"]),
        Route(f"{op}/messages/{{message_id}}/reprocess", page(operator.reprocess, oper),
              methods=["POST"]),
        Route(f"{op}/system", page(operator.system_page, oper), methods=["GET"]),
        Route(f"{op}/identity", page(identity_review.queue_page, oper), methods=["GET"]),
        Route(f"{op}/identity/{{item_id}}", page(identity_review.decide, oper),
              methods=["POST"]),
        Route(f"{op}/quality", page(quality.scores_page, oper), methods=["GET"]),
        Route(f"{op}/quality/findings", page(quality.findings_page, oper), methods=["GET"]),
        *_audit_routes(site),
        Mount(STATIC_PATH, StaticFiles(packages=[("huitong.web", "static")]), name="web-static"),
        Route(f"{APP_PATH}/{{rest:path}}", page(frames.not_found), methods=_ALL_METHODS),
    ]


def _portal_routes(site: Site) -> list[BaseRoute]:
    """The patient portal (:mod:`huitong.web.portal`): residents signed in to their record."""
    def page(handler: Handler, audience: Audience) -> Any:
        return site.endpoint(portal.needs_sign_in("portal", handler), audience)

    who = Audience.PATIENT
    base = f"{APP_PATH}/portal"
    return [
        Route(base, page(portal.record_page, who), methods=["GET"]),
        Route(f"{base}/consents", page(portal.consents_page, who), methods=["GET"]),
        Route(f"{base}/consents", page(portal.grant_consent, who), methods=["POST"]),
        Route(f"{base}/consents/{{consent_id}}/revoke", page(portal.revoke_consent, who),
              methods=["POST"]),
        Route(f"{base}/share", page(portal.share_page, who), methods=["GET"]),
        Route(f"{base}/share", page(portal.issue_share_code, who), methods=["POST"]),
        Route(f"{base}/share/{{code_id}}/withdraw", page(portal.withdraw_share_code, who),
              methods=["POST"]),
        Route(f"{base}/access", page(portal.access_page, who), methods=["GET"]),
        Route(f"{base}/access/{{index}}/proof", page(portal.proof_json, who), methods=["GET"]),
    ]


def _audit_routes(site: Site) -> list[BaseRoute]:
    """The auditor's pages (:mod:`huitong.web.audit_pages`)."""
    def page(handler: Handler, audience: Audience) -> Any:
        return site.endpoint(portal.needs_sign_in("audit", handler), audience)

    who = Audience.AUDITOR
    base = f"{APP_PATH}/operator/audit"
    return [
        Route(base, page(audit_pages.search_page, who), methods=["GET"]),
        Route(f"{base}/entries/{{index}}", page(audit_pages.entry_page, who), methods=["GET"]),
        Route(f"{base}/check", page(audit_pages.check_proof, who), methods=["POST"]),
        Route(f"{base}/verify", page(audit_pages.verify_log, who), methods=["POST"]),
    ]

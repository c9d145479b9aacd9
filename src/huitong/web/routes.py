"""The pages' routing table: :func:`web_routes` is what the application mounts.

Everything lives under ``/app`` (static files under ``/app/static``); any other path below
``/app`` answers the bilingual 404 page, never the API's OperationOutcome.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from huitong.web import clinician, frames, operator
from huitong.web.rendering import APP_PATH, STATIC_PATH
from huitong.web.services import WebServices
from huitong.web.site import Site

__all__ = ["web_routes"]

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def web_routes(services: WebServices) -> list[BaseRoute]:
    """The web pages over ``services``, to add to the application's routes."""
    site = Site(services)
    page = site.endpoint
    return [
        Route(APP_PATH, page(frames.home), methods=["GET"]),
        Route(f"{APP_PATH}/", page(frames.home), methods=["GET"]),
        Route(f"{APP_PATH}/clinician", page(clinician.patient_search), methods=["GET"]),
        Route(f"{APP_PATH}/patients/{{patient_id}}", page(clinician.patient_overview),
              methods=["GET"]),
        Route(f"{APP_PATH}/resources/{{resource_type}}/{{resource_id}}",
              page(clinician.resource_page), methods=["GET"]),
        Route(f"{APP_PATH}/portal", page(frames.feature_frame("portal")), methods=["GET"]),
        Route(f"{APP_PATH}/operator", page(frames.operator_home), methods=["GET"]),
        Route(f"{APP_PATH}/operator/channels", page(operator.channels_page), methods=["GET"]),
        Route(f"{APP_PATH}/operator/messages", page(operator.messages_page), methods=["GET"]),
        Route(f"{APP_PATH}/operator/messages/{{message_id}}", page(operator.message_page),
              methods=["GET"]),
        Route(f"{APP_PATH}/operator/messages/{{message_id}}/reprocess", page(operator.reprocess),
              methods=["POST"]),
        Route(f"{APP_PATH}/operator/system", page(operator.system_page), methods=["GET"]),
        *(Route(f"{APP_PATH}/operator/{feature}", page(frames.feature_frame(feature)),
                methods=["GET"]) for feature in ("identity", "quality", "audit")),
        Mount(STATIC_PATH, StaticFiles(packages=[("huitong.web", "static")]), name="web-static"),
        Route(f"{APP_PATH}/{{rest:path}}", page(frames.not_found), methods=_ALL_METHODS),
    ]

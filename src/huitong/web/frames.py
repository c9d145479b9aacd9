"""The home page, and the frames of pages whose services have not landed yet: the patient
portal, identity review, data quality and audit. Each frame says plainly, in both
languages, that the feature is not available yet — it never shows made-up data.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from huitong.fhir.errors import Category, FhirError
from huitong.web.rendering import APP_PATH, View
from huitong.web.site import Handler, Site

__all__ = ["FEATURES", "feature_frame", "home", "not_found", "operator_home"]

# feature → (service it needs, navigation section, sub-section)
FEATURES = {
    "portal": ("access", "portal", ""),
    "identity": ("identity", "operator", "identity"),
    "quality": ("quality", "operator", "quality"),
    "audit": ("audit", "operator", "audit"),
}


async def home(site: Site, request: Request, view: View) -> Response:
    return site.pages.render(view, "home.html", section="home")


async def operator_home(site: Site, request: Request, view: View) -> Response:
    return RedirectResponse(f"{APP_PATH}/operator/channels", 303)


def feature_frame(feature: str) -> Handler:
    """A handler for ``feature``'s page frame."""
    service, section, subsection = FEATURES[feature]

    async def frame(site: Site, request: Request, view: View) -> Response:
        connected = getattr(site.services, service) is not None
        return site.pages.render(view, "unavailable.html", feature=feature,
                                 connected=connected, section=section, subsection=subsection)

    frame.__name__ = f"{feature}_frame"
    return frame


async def not_found(site: Site, request: Request, view: View) -> Response:
    raise FhirError(Category.NOT_FOUND, view.t("error.no_such_page"))

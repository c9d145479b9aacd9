"""Turning a page's data into an HTML response: the per-request :class:`View` (language,
text size, session and CSRF token), the Jinja2 environment, security headers, error pages.

Every page response carries a Content-Security-Policy that allows only this origin (no
inline script or style, nothing from a CDN: the pages work offline), ``Cache-Control:
no-store`` (pages show health data), and the language it is written in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

import huitong
from huitong.fhir.errors import CATEGORY_INFO, Category, FhirError
from huitong.web import display
from huitong.web.charts import Chart, line_chart_svg
from huitong.web.csrf import SESSION_COOKIE, csrf_token, is_session_id, new_session_id
from huitong.web.i18n import Translator, choose_language, load_catalogue

__all__ = ["APP_PATH", "STATIC_PATH", "Pages", "View", "view_for"]

log = logging.getLogger("huitong.web")

APP_PATH = "/app"
STATIC_PATH = f"{APP_PATH}/static"
LANG_COOKIE = "huitong_lang"
TEXT_COOKIE = "huitong_text"
_YEAR = 365 * 24 * 3600
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(slots=True)
class View:
    """What every page needs to know about the request it answers."""

    lang: str
    t: Translator
    large_text: bool
    session_id: str
    new_session: bool
    set_lang: str | None
    set_text: str | None
    csrf: str
    path: str
    query: list[tuple[str, str]]
    secure: bool
    # Set by Site.endpoint when authentication is on: the signed-in person (None: nobody).
    who: Any = None
    auth_on: bool = False

    def url_with(self, **changes: str | None) -> str:
        """This page's URL with query parameters changed (None removes one)."""
        kept = [(k, v) for k, v in self.query if k not in changes]
        kept += [(k, v) for k, v in changes.items() if v is not None]
        return self.path + (f"?{urlencode(kept)}" if kept else "")

    def pick(self, text: str) -> str:
        """The current language's half of a bilingual ``"English / 中文"`` message."""
        if " / " not in text:
            return text
        en, _, zh = text.partition(" / ")
        return en if self.lang == "en" else zh


def view_for(request: Request, secret: bytes) -> View:
    query = list(request.query_params.multi_items())
    asked_lang = request.query_params.get("lang")
    lang = choose_language(asked_lang, request.cookies.get(LANG_COOKIE))
    asked_text = request.query_params.get("text")
    text = asked_text if asked_text in ("large", "normal") else request.cookies.get(TEXT_COOKIE)
    session = request.cookies.get(SESSION_COOKIE)
    new_session = not is_session_id(session)
    if new_session:
        session = new_session_id()
    assert session is not None
    return View(
        lang=lang,
        t=Translator(load_catalogue(), lang),
        large_text=text == "large",
        session_id=session,
        new_session=new_session,
        set_lang=lang if asked_lang is not None else None,
        set_text=asked_text if asked_text in ("large", "normal") else None,
        csrf=csrf_token(secret, session),
        path=request.url.path,
        query=[(k, v) for k, v in query if k not in ("lang", "text")],
        secure=request.url.scheme == "https",
    )


def _svg(chart: Chart) -> Markup:
    # line_chart_svg escapes every piece of text it writes
    return Markup(line_chart_svg(chart))


class Pages:
    """The template environment and the one place responses are made."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("huitong.web", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            concept=display.concept_text,
            when=display.format_when,
            day=lambda v: display.format_when(v, with_time=False),
            instant=display.format_instant_us,
            quantity=display.quantity_text,
            svg=_svg,
        )
        self.env.globals.update(
            version=huitong.__version__,
            static=lambda name: f"{STATIC_PATH}/{name}?v={huitong.__version__}",
            app=APP_PATH,
        )

    def render(self, view: View, template: str, http_status: int = 200, *,
               headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(view=view, t=view.t, **context)
        response = HTMLResponse(html, http_status, headers={**_SECURITY_HEADERS, **(headers or {}),
                                                       "Content-Language": view.lang})
        self.remember(view, response)
        return response

    def remember(self, view: View, response: Any) -> None:
        """Set the cookies this request chose (language, text size, a new session)."""
        common = {"path": APP_PATH, "samesite": "strict", "secure": view.secure}
        if view.set_lang:
            response.set_cookie(LANG_COOKIE, view.set_lang, max_age=_YEAR, **common)
        if view.set_text:
            response.set_cookie(TEXT_COOKIE, view.set_text, max_age=_YEAR, **common)
        if view.new_session:
            response.set_cookie(SESSION_COOKIE, view.session_id, httponly=True, **common)

    def error(self, view: View, status: int, message: str = "") -> HTMLResponse:
        """The bilingual error page for ``status`` (``message`` may be ``"en / zh"``)."""
        known = status if status in (400, 401, 403, 404, 405, 409, 410, 503) else 500
        return self.render(view, "error.html", status, code=status,
                           title=view.t(f"error.{known}.title"),
                           explanation=view.t(f"error.{known}.text"),
                           detail=view.pick(message))

    def failure(self, view: View, err: FhirError) -> HTMLResponse:
        status = CATEGORY_INFO[err.category].status
        if err.category is Category.INTERNAL:
            return self.error(view, 500)
        detail = "; ".join(i.message for i in err.issues) if err.issues else ""
        return self.error(view, status, detail)

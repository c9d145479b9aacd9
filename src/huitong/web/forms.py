"""Reading a page's form post: bounded size, URL-encoded fields, the session's CSRF token.

Every state-changing page request is a POST of a form that carries the CSRF token of the
browser session (:mod:`huitong.web.csrf`); a post without it is refused before anything runs.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from huitong.fhir.errors import Category, FhirError
from huitong.web.csrf import valid_csrf
from huitong.web.rendering import View

__all__ = ["MAX_FORM_BYTES", "read_form", "read_form_multi"]

MAX_FORM_BYTES = 8192


async def read_form(request: Request, view: View, secret: bytes) -> dict[str, str]:
    """The form's fields (first value wins). TOO_LARGE past :data:`MAX_FORM_BYTES`;
    FORBIDDEN when the CSRF token is not this session's."""
    return {k: v[0] for k, v in (await read_form_multi(request, view, secret)).items()}


async def read_form_multi(request: Request, view: View, secret: bytes) -> dict[str, list[str]]:
    """Like :func:`read_form`, with every value of repeated fields (checkboxes)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FhirError(Category.TOO_LARGE, view.t("error.form_too_large"))
    fields: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                                max_num_fields=50):  # fmt: skip
        fields.setdefault(key, []).append(value)
    session = None if view.new_session else view.session_id
    token = fields.get("csrf")
    if not valid_csrf(secret, session, token[0] if token else None):
        raise FhirError(Category.FORBIDDEN, view.t("error.csrf"))
    return fields

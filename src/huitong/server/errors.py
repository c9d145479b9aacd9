"""The one place a failure becomes an HTTP status and an OperationOutcome.

:class:`~huitong.fhir.errors.FhirError` carries its category; the status and issue code come
from :data:`~huitong.fhir.errors.CATEGORY_INFO` via :func:`~huitong.fhir.outcome.error_outcome`
— https://hl7.org/fhir/R4/http.html#Status-Codes. Any other exception is a bug: it becomes a
500 OperationOutcome with a generic message and is logged WITHOUT its message (which could
echo patient data): only the exception class, the traceback frames, the interaction and the
resource type/id.
"""

from __future__ import annotations

import logging
import traceback

from huitong.fhir.errors import Category, FhirError
from huitong.fhir.outcome import error_outcome
from huitong.server.response import FhirResponse

__all__ = ["error_response", "internal_error_response", "status_error"]

log = logging.getLogger("huitong.server")

# Starlette's own 404/405 (routes outside the FHIR base) mapped onto our categories.
_STATUS_CATEGORY = {
    400: Category.INVALID,
    404: Category.NOT_FOUND,
    405: Category.NOT_ALLOWED,
    406: Category.NOT_ACCEPTABLE,
    413: Category.TOO_LARGE,
    415: Category.UNSUPPORTED_MEDIA,
}


def error_response(err: FhirError) -> FhirResponse:
    """The response for a failure in one of the closed categories."""
    allow: tuple[str, ...] = getattr(err, "allow", ())  # set by routing's MethodNotAllowed
    headers = {"Allow": ", ".join(allow)} if allow else {}
    return FhirResponse(err.status, error_outcome(err), headers=headers)


def status_error(status: int, message: str) -> FhirError:
    """A FhirError for a bare HTTP status raised outside our handlers (router 404/405)."""
    return FhirError(_STATUS_CATEGORY.get(status, Category.INVALID), message)


def internal_error_response(exc: BaseException, *, where: str) -> FhirResponse:
    """A 500 for an unexpected exception. ``where`` names the interaction and resource
    (``read Patient/123``) — ids only, never content."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s in %s\n%s", type(exc).__name__, where, frames)
    return error_response(
        FhirError(Category.INTERNAL, "internal server error; the failure has been logged")
    )

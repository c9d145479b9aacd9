"""The closed set of failure categories Huitong speaks in.

Every layer raises :class:`FhirError` with one :class:`Category`; the HTTP status, the
OperationOutcome ``issue.code`` and (later) the HL7 v2 acknowledgement code are derived from
the category in exactly one place (:data:`CATEGORY_INFO`), never chosen ad hoc by a handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["CATEGORY_INFO", "Category", "CategoryInfo", "FhirError", "Issue"]


class Category(Enum):
    INVALID = "invalid"  # malformed request or resource (400)
    UNPROCESSABLE = "unprocessable"  # well-formed but breaks a FHIR rule (422)
    NOT_SUPPORTED = "not-supported"  # a feature we do not offer (400, or 405 for methods)
    NOT_ALLOWED = "not-allowed"  # method not allowed on this URL (405)
    NOT_ACCEPTABLE = "not-acceptable"  # format we cannot produce (406)
    UNSUPPORTED_MEDIA = "unsupported-media"  # body format we cannot read (415)
    NOT_FOUND = "not-found"  # 404
    GONE = "gone"  # deleted (410)
    CONFLICT = "conflict"  # version or uniqueness conflict (409)
    PRECONDITION_FAILED = "precondition-failed"  # If-Match / conditional ambiguity (412)
    TOO_LARGE = "too-large"  # body over the configured limit (413)
    UNAUTHORIZED = "unauthorized"  # 401
    FORBIDDEN = "forbidden"  # 403
    TOO_MANY_REQUESTS = "too-many-requests"  # 429
    UNAVAILABLE = "unavailable"  # transient: database down (503)
    INTERNAL = "internal"  # a bug (500)


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    status: int
    issue_code: str  # http://hl7.org/fhir/R4/valueset-issue-type.html
    hl7v2_ack: str  # AE (application error, resend may help) or AR (reject)


CATEGORY_INFO: dict[Category, CategoryInfo] = {
    Category.INVALID: CategoryInfo(400, "invalid", "AR"),
    Category.UNPROCESSABLE: CategoryInfo(422, "processing", "AR"),
    Category.NOT_SUPPORTED: CategoryInfo(400, "not-supported", "AR"),
    Category.NOT_ALLOWED: CategoryInfo(405, "not-supported", "AR"),
    Category.NOT_ACCEPTABLE: CategoryInfo(406, "not-supported", "AR"),
    Category.UNSUPPORTED_MEDIA: CategoryInfo(415, "not-supported", "AR"),
    Category.NOT_FOUND: CategoryInfo(404, "not-found", "AE"),
    Category.GONE: CategoryInfo(410, "deleted", "AE"),
    Category.CONFLICT: CategoryInfo(409, "conflict", "AE"),
    Category.PRECONDITION_FAILED: CategoryInfo(412, "conflict", "AE"),
    Category.TOO_LARGE: CategoryInfo(413, "too-costly", "AR"),
    Category.UNAUTHORIZED: CategoryInfo(401, "login", "AR"),
    Category.FORBIDDEN: CategoryInfo(403, "forbidden", "AR"),
    Category.TOO_MANY_REQUESTS: CategoryInfo(429, "throttled", "AE"),
    Category.UNAVAILABLE: CategoryInfo(503, "transient", "AE"),
    Category.INTERNAL: CategoryInfo(500, "exception", "AE"),
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem, as it becomes an ``OperationOutcome.issue``.

    ``expression`` names the element in FHIRPath (``Patient.birthDate``); ``code`` overrides
    the category's default issue code when a more specific one applies (``required``,
    ``value``, ``structure``, ``code-invalid``...).
    """

    message: str
    expression: str | None = None
    severity: str = "error"
    code: str | None = None


@dataclass(slots=True)
class FhirError(Exception):
    """A failure in one of the closed categories, with one or more issues."""

    category: Category
    issues: list[Issue] = field(default_factory=list)

    def __init__(
        self,
        category: Category,
        message: str | None = None,
        *,
        expression: str | None = None,
        issues: list[Issue] | None = None,
        code: str | None = None,
    ) -> None:
        self.category = category
        self.issues = list(issues or [])
        if message is not None:
            self.issues.insert(0, Issue(message, expression, code=code))
        Exception.__init__(self, self.message)

    @property
    def message(self) -> str:
        return "; ".join(i.message for i in self.issues) or self.category.value

    @property
    def status(self) -> int:
        return CATEGORY_INFO[self.category].status

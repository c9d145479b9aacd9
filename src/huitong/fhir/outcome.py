"""OperationOutcome construction — https://hl7.org/fhir/R4/operationoutcome.html."""

from __future__ import annotations

from typing import Any

from huitong.fhir.errors import CATEGORY_INFO, FhirError, Issue

__all__ = ["error_outcome", "operation_outcome"]


def operation_outcome(issues: list[Issue], default_code: str = "informational") -> dict[str, Any]:
    """An OperationOutcome with one ``issue`` per :class:`Issue`."""
    out = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code or default_code,
            "diagnostics": issue.message,
        }
        if issue.expression:
            entry["expression"] = [issue.expression]
        out.append(entry)
    if not out:
        out.append({"severity": "information", "code": "informational", "diagnostics": "OK"})
    return {"resourceType": "OperationOutcome", "issue": out}


def error_outcome(error: FhirError) -> dict[str, Any]:
    """The OperationOutcome for a :class:`FhirError`, its issue code taken from the category."""
    return operation_outcome(error.issues, CATEGORY_INFO[error.category].issue_code)

"""CodeSystem ``$subsumes`` — https://hl7.org/fhir/R4/codesystem-operation-subsumes.html.

``outcome`` is ``equivalent`` (same concept), ``subsumes`` (A is an ancestor of B),
``subsumed-by`` (B is an ancestor of A) or ``not-subsumed``. Failure contract: INVALID
(issue code ``code-invalid``) when either code is unknown; NOT_SUPPORTED when the system's
hierarchy is not an is-a hierarchy (``grouped-by``, ``part-of``).
"""

from __future__ import annotations

from typing import Any

from huitong.fhir.errors import Category
from huitong.terminology._messages import error
from huitong.terminology._parameters import ParametersBuilder
from huitong.terminology.index import CodeSystemIndex

__all__ = ["subsumes", "subsumption"]

_NOT_IS_A = frozenset({"grouped-by", "part-of"})


def subsumption(index: CodeSystemIndex, code_a: str, code_b: str) -> str:
    """The relationship of A to B, as the ``concept-subsumption-outcome`` code."""
    if index.hierarchy_meaning in _NOT_IS_A:
        raise error(Category.NOT_SUPPORTED, "no-hierarchy", url=index.url,
                    meaning=index.hierarchy_meaning)
    a, b = index.get(code_a), index.get(code_b)
    for given, concept in ((code_a, a), (code_b, b)):
        if concept is None:
            ver = f" (version {index.version})" if index.version else ""
            raise error(Category.INVALID, "unknown-code", issue_code="code-invalid", code=given,
                        url=index.url, ver=ver)
    assert a is not None and b is not None
    if a.code == b.code:
        return "equivalent"
    if a.code in index.ancestors(b.code):
        return "subsumes"
    if b.code in index.ancestors(a.code):
        return "subsumed-by"
    return "not-subsumed"


def subsumes(index: CodeSystemIndex, code_a: str, code_b: str) -> dict[str, Any]:
    """The ``Parameters`` answer: one ``outcome`` parameter."""
    return ParametersBuilder().add("outcome", subsumption(index, code_a, code_b), "code").build()

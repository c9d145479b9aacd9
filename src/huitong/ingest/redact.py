"""Error texts without patient data: for ACK ERR segments, feed row reports, stored errors
and log lines.

The FHIR layers describe a failure in their own words, and some of those words are the
offending value: the validator quotes a bad string or date (``Patient.birthDate:
'1990-02-30' is not a calendar date``), a conditional reference quotes its query
(``conditional reference Patient?identifier=urn:oid:…|110101199003077777 matches no
resource``). Such a value may be a resident ID number, a name, a phone number, an address or
a birth date. The sender already has it, but an error text travels further (the error
queue, the operator console, logs, monitoring), so the texts that leave the message store
name the element and the rule, never the value:

* every quoted literal (``'…'``, ``"…"``, ``“…”``, ``‘…’``) becomes ``'…'``;
* the value of every search parameter in a ``Type?name=value`` query becomes ``…``;
* long digit runs (identifier, phone and card numbers, with separators), dates and e-mail
  addresses that appear unquoted become ``…``;
* an issue that names its element (``Issue.expression``) is written ``element: text``.

Resource ids (``Patient/123``), rule ids (``[patient.birth-date]``) and FHIR element paths
are kept: they are what an operator needs and they say nothing about the person.
:func:`safe_exception` gives a log line for an unexpected exception: its type and stack
frames, without its message (which may quote anything).
"""

from __future__ import annotations

import re
import traceback

from huitong.fhir.errors import FhirError, Issue

__all__ = ["REDACTED", "redact_text", "safe_error_text", "safe_exception", "safe_issue_text"]

REDACTED = "…"

_QUOTED = re.compile(
    r"'(?:[^'\\\n]|\\.)*'"  # Python repr and single quotes
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|“[^”\n]*”|‘[^’\n]*’|「[^」\n]*」"  # Chinese quotation marks
)
# ``?identifier=sys|value&name=x``: keep the names, drop the values.
_QUERY_VALUE = re.compile(r"([?&][A-Za-z_][\w:.\-]*=)[^&\s;,)]+")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
# Seven or more digits, possibly split by spaces, dashes, dots or parentheses (phone and ID
# numbers, with a trailing X check character), or a calendar date / date-time. Digits right
# after '/' (resource ids) or inside a word (OIDs are dotted runs of short numbers) stay.
_NUMBER = re.compile(
    r"(?<![\w/.])(?:\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+\-]\d{2}:?\d{2})?)?"
    r"|\+?\d[\d \-().]{5,}\d[Xx]?)(?![\w/\-])"
)


def _digits(match: re.Match[str]) -> str:
    text = match.group(0)
    return REDACTED if sum(c.isdigit() for c in text) >= 7 else text


def redact_text(text: str) -> str:
    """``text`` with quoted literals, query values, e-mail addresses, long numbers and
    dates replaced by ``…``."""
    if not text:
        return text
    text = _QUOTED.sub(lambda m: m.group(0)[0] + REDACTED + m.group(0)[-1], text)
    text = _QUERY_VALUE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
    return _NUMBER.sub(_digits, text)


def safe_issue_text(issue: Issue) -> str:
    """One issue: ``element: rule`` without the value."""
    message = redact_text(issue.message)
    if issue.expression and issue.expression not in message:
        return f"{issue.expression}: {message}"
    return message


def safe_error_text(error: FhirError) -> str:
    """The whole error, issue by issue, without values (the category when it has none)."""
    return "; ".join(safe_issue_text(i) for i in error.issues) or error.category.value


def safe_exception(exc: BaseException) -> str:
    """An unexpected exception for a log line: its type and where it was raised, not its
    message (``KeyError('110101…')`` would print the key)."""
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    where = " <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"
                        for f in reversed(frames))
    return f"{type(exc).__name__} at {where}" if where else type(exc).__name__

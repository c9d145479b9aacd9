"""From what a clinician types in the patient search box to FHIR Patient searches.

Pure: returns search parameters, runs nothing. The box takes a name (characters or Latin
letters), an 18- or 15-digit resident ID number (GB 11643), a mobile number (with or without
+86 / 0086), or a source identifier (a hospital MRN, a health-card number, or
``system|value``). ``SearchKind.AUTO`` guesses which from the shape of the text.

Search semantics — https://hl7.org/fhir/R4/search.html: ``name`` is a string search
(starts-with on every name part), ``identifier`` and ``telecom`` are token searches (exact
value, any system unless ``system|`` is given). Several values in one parameter are ORed.
"""

from __future__ import annotations

import re
from enum import StrEnum

from huitong.fhir.errors import Category, FhirError

__all__ = ["MAX_QUERY_CHARS", "SearchKind", "classify", "patient_queries"]

MAX_QUERY_CHARS = 100

_RESIDENT_ID = re.compile(r"[1-9]\d{16}[\dX]|[1-9]\d{14}")  # region codes never start with 0
_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
_HAS_DIGIT = re.compile(r"\d")
_SEPARATORS = re.compile(r"[\s\-()]")


class SearchKind(StrEnum):
    AUTO = "auto"
    NAME = "name"
    RESIDENT_ID = "resident-id"
    PHONE = "phone"
    IDENTIFIER = "identifier"


def _escape(value: str) -> str:
    """Escape FHIR search's special characters so typed text is taken literally."""
    return re.sub(r"([\\,$|])", r"\\\1", value)


def _invalid(en: str, zh: str) -> FhirError:
    return FhirError(Category.INVALID, f"{en} / {zh}")


def classify(text: str) -> SearchKind:
    """The kind of ``text`` (already stripped): ID number, phone, identifier or name."""
    compact = _SEPARATORS.sub("", text).upper()
    if _RESIDENT_ID.fullmatch(compact):
        return SearchKind.RESIDENT_ID
    if _MOBILE.fullmatch(compact):
        return SearchKind.PHONE
    if "|" in text or _HAS_DIGIT.search(text):
        return SearchKind.IDENTIFIER
    return SearchKind.NAME


def _phone_values(text: str) -> list[str]:
    compact = _SEPARATORS.sub("", text)
    m = _MOBILE.fullmatch(compact)
    if m is None:
        raise _invalid("not a mobile phone number", "不是有效的手机号码")
    digits = m.group(1)
    # Sources write the same number several ways; a token search needs the exact one.
    return [f"+86 {digits}", f"+86{digits}", digits, f"0086{digits}"]


def patient_queries(text: str, kind: SearchKind) -> list[list[tuple[str, str]]]:
    """The Patient searches to run for ``text`` read as ``kind`` (results are unioned).

    Raises ``FhirError(INVALID)`` (in English and Chinese) for empty or over-long input, or
    input that cannot be what ``kind`` says (a phone search without a mobile number)."""
    text = text.strip()
    if not text:
        raise _invalid("type a name, ID number, phone or identifier",
                       "请输入姓名、身份证号、电话或标识符")
    if len(text) > MAX_QUERY_CHARS:
        raise _invalid(f"at most {MAX_QUERY_CHARS} characters", f"最多 {MAX_QUERY_CHARS} 个字符")
    if kind is SearchKind.AUTO:
        kind = classify(text)
        if kind is SearchKind.PHONE:
            # An 11-digit number may as well be a hospital's record number: try both.
            return [*patient_queries(text, SearchKind.PHONE),
                    *patient_queries(text, SearchKind.IDENTIFIER)]
    if kind is SearchKind.NAME:
        return [[("name", _escape(text))]]
    if kind is SearchKind.RESIDENT_ID:
        compact = _SEPARATORS.sub("", text).upper()
        if not _RESIDENT_ID.fullmatch(compact):
            raise _invalid("a resident ID number has 18 (or 15) digits",
                           "居民身份证号应为 18 位（或 15 位）")
        return [[("identifier", compact)]]
    if kind is SearchKind.PHONE:
        return [[("telecom", ",".join(_escape(v) for v in _phone_values(text)))]]
    # IDENTIFIER: "system|value" keeps its system; anything else matches any system.
    if "|" in text:
        system, _, value = text.partition("|")
        if not value.strip():
            raise _invalid("give a value after '|'", "请在“|”后输入标识符的值")
        token = f"{_escape(system.strip())}|{_escape(value.strip())}"
    else:
        token = _escape(text)
    return [[("identifier", token)]]

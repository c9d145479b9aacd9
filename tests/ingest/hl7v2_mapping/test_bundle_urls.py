"""The Bundle builder's fullUrls and search criteria are part of what makes a resent message
idempotent (the same message must yield the same Bundle, across versions of Huitong too):
the fast spellings must give exactly what ``uuid.uuid5`` and ``urllib.parse.quote`` give."""

from __future__ import annotations

import random
import uuid
from urllib.parse import quote

from huitong.ingest.hl7v2.mapping.bundle import _NAMESPACE, BundleBuilder, _uuid5, search_value

# Letters, digits, the URL-safe marks, the characters search escaping and quoting change,
# and non-ASCII text (Chinese names and addresses, accented Latin, a control character).
_ALPHABET = "aZ09_.-~ |,$\\%/?#&=+:;@!*'()[]中国张伟éß\x00\t\n"


def _reference_search_value(text: str) -> str:
    for ch in ("\\", ",", "|", "$"):
        text = text.replace(ch, "\\" + ch)
    return quote(text, safe="")


def _texts() -> list[str]:
    rng = random.Random(20261122)
    out = ["", "MRN12345", "urn:oid:2.16.840.1.113883.2.4.6.3", "A-1_b.c~d", "张伟", "a|b"]
    out += ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 16)))
            for _ in range(5000)]
    return out


def test_full_url_is_the_uuid5_of_type_and_identifier() -> None:
    for text in _texts():
        key = f"Patient|urn:oid:1.2.3|{text}"
        assert _uuid5(key) == str(uuid.uuid5(_NAMESPACE, key)), text
        assert BundleBuilder.full_url("Patient", ("urn:oid:1.2.3", text)) == (
            f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}")


def test_search_value_escapes_and_quotes_as_before() -> None:
    for text in _texts():
        assert search_value(text) == _reference_search_value(text), text

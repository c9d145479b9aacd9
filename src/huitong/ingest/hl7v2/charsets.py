"""MSH-18 character sets (HL7 table 0211) and the Python codecs that read them.

Table 0211: https://terminology.hl7.org/CodeSystem-v2-0211.html. Chinese hospital systems
often write non-standard spellings (``GBK``, ``GB2312``, ``UTF-8``), so names are compared
with spaces, hyphens, underscores and slashes removed, case-insensitively.

GBK and GB 2312 are read with the GB 18030 codec, which is a superset of both. CNS 11643
has no Python codec; its repertoire is the one Big5 encodes, and systems that declare it in
practice send Big5, so it is read as Big5 on a best-effort basis (:func:`is_best_effort`).
"""

from __future__ import annotations

__all__ = ["codec_for_charset", "is_best_effort", "normalise_charset"]

_CODECS: dict[str, str] = {
    "ASCII": "ascii",
    "USASCII": "ascii",
    "88591": "latin-1",
    "88592": "iso8859-2",
    "88593": "iso8859-3",
    "88594": "iso8859-4",
    "88595": "iso8859-5",
    "88596": "iso8859-6",
    "88597": "iso8859-7",
    "88598": "iso8859-8",
    "88599": "iso8859-9",
    "885915": "iso8859-15",
    "ISO88591": "latin-1",
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    "GB180302000": "gb18030",
    "GB180302005": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gb18030",
    "GB2312": "gb18030",
    "CNS116431992": "big5",
    "BIG5": "big5",
    "KSX1001": "euc_kr",
}

_BEST_EFFORT = frozenset({"CNS116431992"})


def normalise_charset(name: str) -> str:
    """``"GB 18030-2000"`` → ``"GB180302000"``: the key names are compared on."""
    return "".join(ch for ch in name.upper() if ch not in " -_/")


def codec_for_charset(name: str) -> str | None:
    """The Python codec for an MSH-18 value; ``"ascii"`` for an empty one is *not* implied
    here (an empty MSH-18 means "guess", see :mod:`huitong.ingest.hl7v2.decode`). ``None``
    for a character set we cannot read."""
    return _CODECS.get(normalise_charset(name))


def is_best_effort(name: str) -> bool:
    """Whether the codec for ``name`` only approximates the declared character set."""
    return normalise_charset(name) in _BEST_EFFORT

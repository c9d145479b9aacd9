"""HL7 v2 escape sequences for the delimiter characters (v2.8 chapter 2, section 2.7).

Only the five delimiter escapes are translated (``\\F\\`` field, ``\\S\\`` component,
``\\T\\`` sub-component, ``\\R\\`` repetition, ``\\E\\`` escape; ``\\P\\`` truncation is
left alone); formatting and character-set escapes (``\\H\\``, ``\\X..\\``, ``\\C..\\``)
pass through unchanged, because their meaning belongs to the receiving application.
"""

from __future__ import annotations

__all__ = ["escape", "unescape"]


def _delimiters(encoding_chars: str) -> tuple[str, str, str, str]:
    """(component, repetition, escape, sub-component), MSH-2 order, defaults filling gaps."""
    given = encoding_chars[:4]
    chars = given + "^~\\&"[len(given):]
    return chars[0], chars[1], chars[2], chars[3]


def _table(field_sep: str, encoding_chars: str) -> dict[str, str]:
    comp, rep, esc, sub = _delimiters(encoding_chars)
    return {field_sep: "F", comp: "S", sub: "T", rep: "R", esc: "E"}


def escape(text: str, field_sep: str = "|", encoding_chars: str = "^~\\&") -> str:
    """``text`` with every delimiter replaced by its escape sequence, safe to place in any
    field, component or sub-component. Segment terminators (CR, LF) become spaces, since
    no escape for them exists outside formatted text."""
    table = _table(field_sep, encoding_chars)
    esc = _delimiters(encoding_chars)[2]
    out: list[str] = []
    for ch in text:
        if ch in table:
            out.append(f"{esc}{table[ch]}{esc}")
        elif ch in "\r\n":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def unescape(text: str, field_sep: str = "|", encoding_chars: str = "^~\\&") -> str:
    """The inverse of :func:`escape` for the five delimiter escapes."""
    esc = _delimiters(encoding_chars)[2]
    if esc not in text:
        return text
    reverse = {code: ch for ch, code in _table(field_sep, encoding_chars).items()}
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == esc and i + 2 < len(text) and text[i + 2] == esc and text[i + 1] in reverse:
            out.append(reverse[text[i + 1]])
            i += 3
        else:
            out.append(ch)
            i += 1
    return "".join(out)

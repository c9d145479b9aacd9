"""Building the ``hl7.Message`` tree, object for object as ``hl7.parse`` builds it, faster.

``hl7.parse`` walks a plan object per node and runs each container's checking
constructor; on the shared ADT samples that is most of the cost of handling a message (about
5 ms of 8 on this machine). :func:`build_tree` splits the same way — every rule of
python-hl7 0.4's ``_split`` kept: a part holding no further separator stays one leaf
container, the first three MSH fields are MSH, its field separator and its encoding
characters, sub-components are plain strings, the text is stripped first — and fills the
containers directly. The result is the same tree with the same attributes, so code written
against ``hl7.Message`` cannot tell the difference; a test compares the two on every
sample and on fuzzed input.
"""

from __future__ import annotations

from typing import Any

import hl7
from hl7.containers import Component, Factory, Field, Repetition, Segment

__all__ = ["build_tree"]

_LEVELS: tuple[type[Any], ...] = (hl7.Message, Segment, Field, Repetition, Component)


def build_tree(text: str, field_sep: str, encoding_chars: str) -> hl7.Message:
    """The ``hl7.Message`` for ``text`` (segments separated by CR) with these delimiters.

    ``encoding_chars`` is MSH-2 (component, repetition, escape, sub-component); the
    caller has checked them (four distinct delimiters, none equal to ``field_sep``).
    """
    comp, rep, esc, sub = encoding_chars[0], encoding_chars[1], encoding_chars[2], (
        encoding_chars[3])
    separators = "\r" + field_sep + rep + comp + sub
    text = text.strip()
    if not text.startswith("MSH") or text.find(field_sep, 4) < 0:
        return hl7.parse(text)  # shapes only hl7.parse defines; decode never lets them by

    attrs = [
        {"separator": separators[level], "esc": esc, "separators": separators,
         "factory": Factory}
        for level in range(5)
    ]
    fill = list.__init__

    def make(level: int, data: list[Any]) -> Any:
        node = list.__new__(_LEVELS[level])
        fill(node, data)
        node.__dict__.update(attrs[level])
        return node

    def split(part: str, level: int) -> Any:
        if level == 5:
            return part
        for s in separators[level:]:
            if s in part:
                break
        else:
            return make(level, [part])
        data: list[Any] = []
        if level == 1 and part[:3] in ("MSH", "BHS", "FHS"):
            sep0 = part[3]
            end = part.find(sep0, 4)
            data = [make(2, [part[:3]]), make(2, [sep0]), make(2, [part[4:end]])]
            part = part[end + 1:]
        if part:
            data += [split(x, level + 1) for x in part.split(separators[level])]
        return make(level, data)

    message: hl7.Message = split(text, 0)
    return message

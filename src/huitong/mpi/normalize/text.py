"""Text folding shared by every normaliser: full-width to half-width, traditional to simplified.

Chinese input arrives in full-width forms from IMEs (``ＺＨＡＮＧ``, ``１３８``) and in
traditional characters from Hong Kong, Macao and Taiwan feeds (``張偉``). Both are folded
before any comparison. Traditional-to-simplified conversion uses OpenCC's ``t2s`` tables,
which convert character by character with phrase context; the converter is built once.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc

__all__ = ["fold_width", "to_simplified"]


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def fold_width(text: str) -> str:
    """NFKC-fold ``text``: full-width ASCII becomes ASCII, the ideographic space a space.

    Whitespace runs collapse to one space and the ends are stripped.
    """
    return " ".join(unicodedata.normalize("NFKC", text).split())


@lru_cache(maxsize=65536)
def to_simplified(text: str) -> str:
    """``text`` width-folded and with traditional Chinese characters made simplified."""
    folded = fold_width(text)
    if folded.isascii():
        return folded
    return str(_t2s().convert(folded))

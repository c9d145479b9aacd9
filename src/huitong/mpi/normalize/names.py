"""Person names as the MPI compares them: script-aware, simplified, with pinyin keys.

A name is reduced to a family part and a given part, in one of two scripts:

* **Han** (``张伟``, ``歐陽娜娜``): width-folded, traditional → simplified, split after a
  compound surname (``欧阳``, ``尉迟`` …) or else after the first character, with pinyin
  computed per part; the family part uses the surname reading (``单`` → ``shan``, ``曾`` →
  ``zeng``, ``区`` → ``ou``) instead of the character's everyday one.
* **Latin** (``ZHANG Wei``, ``Wei Zhang``, ``Zhang, Wei``): lower-cased; the family part is
  the part before a comma, else the token in capitals, else the token that is a common
  Chinese surname, else the first (Chinese order). ``order_known`` says whether the order
  was stated or guessed, so a comparator can also try the other order.

Keys: ``pinyin`` is toneless with ``ü`` written ``v``; :func:`near_homophone` further merges
the sounds that southern speakers (and clerks who hear them) confuse: zh/z, ch/c, sh/s,
n/l, final -ng/-n, ü/u.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pypinyin import Style, lazy_pinyin

from huitong.mpi.normalize._surnames import COMMON_SURNAMES, COMPOUND_SURNAMES, SURNAME_READINGS
from huitong.mpi.normalize.text import to_simplified

__all__ = [
    "PersonName",
    "han_pinyin",
    "near_homophone",
    "parse_name",
    "split_han_name",
    "surname_pinyin",
]

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Interpuncts used in transliterated minority and foreign names (买买提·艾力).
_DOTS = re.compile(r"[·•・.．]")
_LATIN_JOINERS = re.compile(r"[-'’\s]+")


@dataclass(frozen=True, slots=True)
class PersonName:
    """One normalised name. ``family``/``given`` are simplified Han or lower-case Latin."""

    family: str
    given: str
    script: Literal["han", "latin"]
    family_pinyin: str
    given_pinyin: str
    order_known: bool = True

    @property
    def full(self) -> str:
        """Family then given; Latin parts separated by a space."""
        sep = "" if self.script == "han" else " "
        return f"{self.family}{sep}{self.given}".strip()

    @property
    def pinyin(self) -> str:
        """Toneless pinyin of the whole name, family first, no spaces."""
        return self.family_pinyin + self.given_pinyin


def near_homophone(pinyin: str) -> str:
    """Merge the sound pairs southern accents confuse: zh/z ch/c sh/s n/l -ng/-n ü/u.

    Applied to toneless pinyin without syllable boundaries; both sides of a comparison go
    through the same rewriting, so a merge across a syllable boundary cannot cause a miss.
    """
    key = pinyin.replace("zh", "z").replace("ch", "c").replace("sh", "s")
    key = key.replace("ng", "n").replace("l", "n").replace("v", "u")
    return key


@lru_cache(maxsize=65536)
def han_pinyin(text: str) -> str:
    """Toneless pinyin of Han ``text`` (most common reading, ``ü`` as ``v``), no spaces."""
    return "".join(lazy_pinyin(text, style=Style.NORMAL, errors="ignore")).lower()


@lru_cache(maxsize=8192)
def surname_pinyin(family: str) -> str:
    """Pinyin of a Han family name, with surname readings taking precedence."""
    if family in SURNAME_READINGS:
        return SURNAME_READINGS[family]
    return "".join(SURNAME_READINGS.get(ch) or han_pinyin(ch) for ch in family)


def split_han_name(full: str) -> tuple[str, str]:
    """Split a Han full name into (family, given): compound surname if present, else 1 char.

    A two-character name is always split 1 + 1 (``欧阳`` alone is read as 欧 + 阳).
    """
    for size in (4, 2):
        if len(full) > size and full[:size] in COMPOUND_SURNAMES:
            return full[:size], full[size:]
    return full[:1], full[1:]


def parse_name(
    *, text: str | None = None, family: str | None = None, given: tuple[str, ...] = ()
) -> PersonName | None:
    """Normalise a name given as parts (FHIR ``HumanName.family``/``given``) or as text.

    Parts win over text when present. Returns ``None`` when nothing usable is left.
    """
    fam = to_simplified(family or "")
    giv_parts = [to_simplified(g) for g in given if g and g.strip()]
    if fam or giv_parts:
        if _HAN.search(fam + "".join(giv_parts)):
            giv = _DOTS.sub("", "".join(giv_parts)).replace(" ", "")
            fam = _DOTS.sub("", fam).replace(" ", "")
            if not fam:
                fam, giv = split_han_name(giv)
            return _han(fam, giv)
        return _latin(fam, " ".join(giv_parts), order_known=True)
    if not text or not text.strip():
        return None
    simple = to_simplified(text)
    if _HAN.search(simple):
        full = _DOTS.sub("", simple).replace(" ", "")
        return _han(*split_han_name(full))
    return _parse_latin_text(simple)


def _han(family: str, given: str) -> PersonName:
    return PersonName(family, given, "han", surname_pinyin(family), han_pinyin(given))


def _latin_key(text: str) -> str:
    return _LATIN_JOINERS.sub("", text.lower()).replace("ü", "v").replace("u:", "v")


def _latin(family: str, given: str, *, order_known: bool) -> PersonName:
    fam = " ".join(family.lower().split())
    giv = " ".join(given.lower().split())
    return PersonName(fam, giv, "latin", _latin_key(fam), _latin_key(giv), order_known)


@lru_cache(maxsize=1)
def _surname_keys() -> frozenset[str]:
    readings = {surname_pinyin(ch) for ch in COMMON_SURNAMES}
    return frozenset(readings | {surname_pinyin(c) for c in COMPOUND_SURNAMES})


def _parse_latin_text(text: str) -> PersonName | None:
    if "," in text:
        fam, _, giv = text.partition(",")
        return _latin(fam, giv, order_known=True)
    tokens = [t for t in text.split() if any(ch.isalpha() for ch in t)]
    if not tokens:
        return None
    if len(tokens) == 1:
        return _latin(tokens[0], "", order_known=False)
    capitals = [t for t in tokens if t.isupper() and len(t) > 1]
    if capitals and len(capitals) < len(tokens):
        rest = [t for t in tokens if t not in capitals]
        return _latin(" ".join(capitals), " ".join(rest), order_known=True)
    known = _surname_keys()
    first, last = _latin_key(tokens[0]), _latin_key(tokens[-1])
    if last in known and first not in known:
        return _latin(tokens[-1], " ".join(tokens[:-1]), order_known=False)
    return _latin(tokens[0], " ".join(tokens[1:]), order_known=False)

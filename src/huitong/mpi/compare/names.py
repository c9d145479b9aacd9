"""Name comparators: family and given name, with homophone and near-homophone levels.

Levels, strongest first: ``exact`` (same characters, or same Latin spelling),
``homophone`` (same toneless pinyin: 张伟/章伟, 张伟/ZHANG Wei), ``near-homophone`` (same after
merging zh/z ch/c sh/s n/l -ng/-n: 刘/牛, 陈/岑), ``fuzzy`` (Jaro–Winkler of the pinyin at
least :data:`FUZZY_THRESHOLD`), ``different``. With several names on a record, or a Latin
name whose order was guessed, the best-agreeing pairing and order is used.
"""

from __future__ import annotations

from rapidfuzz.distance import JaroWinkler

from huitong.mpi.normalize.names import PersonName, near_homophone
from huitong.mpi.record import IdentityRecord

__all__ = [
    "FUZZY_THRESHOLD",
    "NAME_LEVELS",
    "best_name_pair",
    "compare_family",
    "compare_given",
    "name_part_level",
]

NAME_LEVELS = ("exact", "homophone", "near-homophone", "fuzzy", "different")
FUZZY_THRESHOLD = 0.88


def name_part_level(a: str, a_pinyin: str, b: str, b_pinyin: str) -> int | None:
    """Level of one name part given its text and toneless pinyin on each side."""
    if not (a or a_pinyin) or not (b or b_pinyin):
        return None
    if a and a == b:
        return 0
    if a_pinyin and a_pinyin == b_pinyin:
        return 1
    if a_pinyin and b_pinyin and near_homophone(a_pinyin) == near_homophone(b_pinyin):
        return 2
    if JaroWinkler.similarity(a_pinyin or a, b_pinyin or b) >= FUZZY_THRESHOLD:
        return 3
    return 4


def _orders(name: PersonName) -> list[tuple[str, str, str, str]]:
    out = [(name.family, name.family_pinyin, name.given, name.given_pinyin)]
    if not name.order_known:
        out.append((name.given, name.given_pinyin, name.family, name.family_pinyin))
    return out


def _same_script_text(a: PersonName, b: PersonName, text: str) -> str:
    # Characters only agree "exactly" within one script; across scripts pinyin decides.
    return text if a.script == b.script else ""


# The family and given comparisons of one pair both need the best pairing: the last answer
# is kept (one tuple, replaced atomically) so scoring a pair computes it once, not twice.
_last: tuple[object, object, tuple[int, int] | None] = (None, None, None)


def best_name_pair(a: IdentityRecord, b: IdentityRecord) -> tuple[int, int] | None:
    """(family level, given level) of the best-agreeing pairing of names and orders."""
    global _last
    last = _last
    if last[0] is a and last[1] is b:
        return last[2]
    best = _best_name_pair(a, b)
    _last = (a, b, best)
    return best


def _best_name_pair(a: IdentityRecord, b: IdentityRecord) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for na in a.names:
        for nb in b.names:
            for fa, fpa, ga, gpa in _orders(na):
                for fb, fpb, gb, gpb in _orders(nb):
                    fam = name_part_level(
                        _same_script_text(na, nb, fa), fpa, _same_script_text(na, nb, fb), fpb
                    )
                    giv = name_part_level(
                        _same_script_text(na, nb, ga), gpa, _same_script_text(na, nb, gb), gpb
                    )
                    levels = (4 if fam is None else fam, 4 if giv is None else giv)
                    if best is None or sum(levels) < sum(best):
                        best = levels
    return best


def compare_family(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """Family-name level of the best name pairing; ``None`` if either has no name."""
    pair = best_name_pair(a, b)
    return None if pair is None else pair[0]


def compare_given(a: IdentityRecord, b: IdentityRecord) -> int | None:
    """Given-name level of the best name pairing; ``None`` if either has no name."""
    pair = best_name_pair(a, b)
    return None if pair is None else pair[1]

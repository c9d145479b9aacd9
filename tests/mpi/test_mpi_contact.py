"""Phones, addresses and other identifiers: normalisation and comparison."""

from __future__ import annotations

import pytest

from huitong.mpi.compare.contact import address_level, compare_phone
from huitong.mpi.compare.identifiers import compare_identifiers
from huitong.mpi.normalize.addresses import parse_address
from huitong.mpi.normalize.identifiers import MRN_PREFIX, normalize_identifier
from huitong.mpi.normalize.phones import parse_phone
from huitong.mpi.record import IdentityRecord


@pytest.mark.parametrize(
    "typed",
    ["13812345678", "+86 138 1234 5678", "0086-138-1234-5678", "8613812345678", "１３８１２３４５６７８"],
)
def test_mobile_numbers_normalise(typed: str) -> None:
    phone = parse_phone(typed)
    assert phone is not None
    assert (phone.number, phone.kind) == ("13812345678", "mobile")


@pytest.mark.parametrize(
    ("typed", "number", "area"),
    [
        ("(010) 6552-1234", "01065521234", "010"),
        ("+86 10 65521234", "01065521234", "010"),
        ("0755-88889999", "075588889999", "0755"),
        ("021-1234567转123", "0211234567", "021"),
    ],
)
def test_landlines_keep_their_area_code(typed: str, number: str, area: str) -> None:
    phone = parse_phone(typed)
    assert phone is not None
    assert (phone.number, phone.kind, phone.area_code) == (number, "landline", area)


def test_too_short_is_no_phone() -> None:
    assert parse_phone("12345") is None


def test_landline_without_area_code_agrees_at_subscriber_level() -> None:
    a = IdentityRecord("Patient/a", phones=(parse_phone("0755-88889999"),))  # type: ignore[arg-type]
    b = IdentityRecord("Patient/b", phones=(parse_phone("88889999"),))  # type: ignore[arg-type]
    c = IdentityRecord("Patient/c", phones=(parse_phone("+86 755 8888 9999"),))  # type: ignore[arg-type]
    assert compare_phone(a, b) == 1
    assert compare_phone(a, c) == 0
    assert compare_phone(a, IdentityRecord("Patient/d")) is None


@pytest.mark.parametrize(
    ("text", "province", "city", "district", "rest"),
    [
        ("广东省深圳市南山区科技园1号", "广东省", "深圳市", "南山区", "科技园1号"),
        ("深圳南山区粤海街道", "广东省", "深圳市", "南山区", "粤海街道"),
        ("廣東省廣州市天河區體育西路", "广东省", "广州市", "天河区", "体育西路"),
        ("海淀区中关村大街27号", "北京市", "北京市", "海淀区", "中关村大街27号"),
        ("中国四川省成都市武侯区", "四川省", "成都市", "武侯区", ""),
    ],
)
def test_addresses_split_into_divisions(
    text: str, province: str, city: str, district: str, rest: str
) -> None:
    address = parse_address(text=text)
    assert address is not None
    assert (address.province, address.city, address.district, address.rest) == (
        province, city, district, rest,
    )  # fmt: skip


def test_structured_fhir_address_parses_like_text() -> None:
    parts = parse_address(state="广东省", city="深圳市", district="福田区", lines=("深南大道1号",))
    text = parse_address(text="广东省深圳市福田区深南大道1号")
    assert parts == text
    assert parts is not None and parts.district_code == "440304"


def test_address_levels() -> None:
    home = parse_address(text="广东省深圳市南山区科技园1号")
    same = parse_address(text="深圳市南山区科技园1号")
    moved_street = parse_address(text="广东省深圳市南山区蛇口港湾大道88号")
    moved_district = parse_address(text="广东省深圳市福田区深南大道1号")
    other_city = parse_address(text="北京市海淀区中关村大街27号")
    assert home and same and moved_street and moved_district and other_city
    assert address_level(home, same) == 0
    assert address_level(home, moved_street) == 1
    assert address_level(home, moved_district) == 2
    assert address_level(home, other_city) == 3


def test_identifiers_compare_only_within_their_system() -> None:
    mrn_a = normalize_identifier(f"{MRN_PREFIX}rmyy", "mr-0001 23")
    assert mrn_a is not None and mrn_a.value == "MR000123"
    same = normalize_identifier(f"{MRN_PREFIX}rmyy", "MR000123")
    other_org = normalize_identifier(f"{MRN_PREFIX}zyy", "MR000123")
    different = normalize_identifier(f"{MRN_PREFIX}rmyy", "MR999999")
    a = IdentityRecord("Patient/a", identifiers=(mrn_a,))
    assert compare_identifiers(a, IdentityRecord("Patient/b", identifiers=(same,))) == 0  # type: ignore[arg-type]
    assert compare_identifiers(a, IdentityRecord("Patient/c", identifiers=(other_org,))) is None  # type: ignore[arg-type]
    assert compare_identifiers(a, IdentityRecord("Patient/d", identifiers=(different,))) == 1  # type: ignore[arg-type]
    assert normalize_identifier(None, "123") is None

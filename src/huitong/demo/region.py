"""The demo's fictional region — 安江省临江市 — and its health institutions.

Geography, institutions and departments are fixed tables; what varies with the seed is
the staff (names, licence numbers) and every identifier. The administrative division codes
use province prefix ``39``, which GB/T 2260 leaves unassigned, so a synthetic resident ID
number can never be a real person's.

:func:`build_region` returns the region as data (:class:`Region`) together with its
transaction Bundle: Organizations, Locations, Practitioners, PractitionerRoles and the
formulary Medications, in that order so a naive loader meets referents first.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from faker import Faker

from huitong.demo import _uscc
from huitong.demo._catalog import PRODUCTS, Product
from huitong.demo._fhir import BundleBuilder, Resource, coding, concept, quantity, reference
from huitong.demo._names import draw_name
from huitong.demo.systems import (
    ATC,
    CS_DEPARTMENT,
    CS_ORGANIZATION_KIND,
    ID_ORG_CODE,
    ID_PRACTITIONER_LICENCE,
    ID_USCC,
    SNOMED,
)

__all__ = [
    "CITY",
    "CITY_AREA_CODE",
    "DEPARTMENTS",
    "DISTRICTS",
    "NEIGHBOURING_AREA_CODES",
    "PROVINCE",
    "Clinician",
    "District",
    "Institution",
    "Region",
    "Street",
    "build_region",
]

PROVINCE = "安江省"
CITY = "临江市"
CITY_AREA_CODE = "390100"
# Districts of the neighbouring (equally fictional) 青石市: birthplaces of people who moved in.
NEIGHBOURING_AREA_CODES = ("390202", "390203", "390221")

Kind = Literal["hospital", "chc", "authority"]


@dataclass(frozen=True)
class Street:
    """A sub-district (街道/镇), served by exactly one community health centre."""

    name: str
    roads: tuple[str, ...]
    population_weight: int
    chc: str  # org code of its community health centre


@dataclass(frozen=True)
class District:
    code: str  # GB/T 2260-style 6-digit code; also the area code of residents' ID numbers
    name: str
    postal_code: str
    general_hospital: str  # org code of the hospital its residents use first
    streets: tuple[Street, ...]


DISTRICTS: tuple[District, ...] = (
    District("390102", "江城区", "399100", "ljh1", (
        Street("城东街道", ("人民路", "解放路", "东风路", "朝阳巷"), 5, "chc-chengdong"),
        Street("滨江街道", ("滨江大道", "临江路", "望江路"), 4, "chc-binjiang"),
    )),
    District("390103", "临东区", "399200", "ljh1", (
        Street("新华街道", ("新华路", "建设路", "文化路"), 4, "chc-xinhua"),
        Street("东湖街道", ("东湖路", "湖滨路", "春晖路"), 3, "chc-donghu"),
    )),
    District("390104", "临西区", "399300", "ljh1", (
        Street("西山街道", ("西山路", "工业路", "和平路"), 3, "chc-xishan"),
    )),
    District("390121", "清溪县", "399400", "qxch", (
        Street("城关镇", ("县前街", "清溪路", "南门路"), 3, "chc-chengguan"),
    )),
)  # fmt: skip

# Department (科室) codes of CS_DEPARTMENT → Chinese name.
DEPARTMENTS: dict[str, str] = {
    "general-practice": "全科医学科",
    "internal-medicine": "普通内科",
    "cardiology": "心血管内科",
    "endocrinology": "内分泌科",
    "emergency": "急诊科",
    "obstetrics": "妇产科",
    "pediatrics": "儿科",
    "child-health": "儿童保健科",
    "tcm": "中医内科",
    "laboratory": "检验科",
    "nursing": "护理部",
}

Role = Literal["doctor", "nurse", "technician"]
_ROLE_TEXT: dict[Role, str] = {"doctor": "医师", "nurse": "护士", "technician": "检验技师"}


@dataclass(frozen=True)
class _Spec:
    code: str
    kind: Kind
    name: str
    alias: str
    district: str
    line: str
    staff: tuple[tuple[str, Role, int], ...]  # (department, role, headcount)
    part_of: str | None = None  # lead hospital of its medical alliance (医联体/医共体)


_CHC_STAFF: tuple[tuple[str, Role, int], ...] = (
    ("general-practice", "doctor", 2),
    ("nursing", "nurse", 1),
    ("laboratory", "technician", 1),
)

_SPECS: tuple[_Spec, ...] = (
    _Spec("ljhc", "authority", "临江市卫生健康委员会", "Linjiang Municipal Health Commission",
          "390102", "人民路1号", ()),
    _Spec("ljhsa", "authority", "临江市医疗保障局", "Linjiang Healthcare Security Administration",
          "390102", "人民路3号", ()),
    _Spec("ljh1", "hospital", "临江市第一人民医院", "Linjiang First People's Hospital",
          "390102", "解放路88号", (
              ("cardiology", "doctor", 2), ("endocrinology", "doctor", 2),
              ("internal-medicine", "doctor", 2), ("emergency", "doctor", 1),
              ("nursing", "nurse", 2), ("laboratory", "technician", 1))),
    _Spec("ljtcm", "hospital", "临江市中医医院",
          "Linjiang Hospital of Traditional Chinese Medicine", "390103", "文化路56号", (
              ("tcm", "doctor", 3), ("nursing", "nurse", 1), ("laboratory", "technician", 1))),
    _Spec("ljmch", "hospital", "临江市妇幼保健院", "Linjiang Maternal and Child Health Hospital",
          "390104", "和平路20号", (
              ("obstetrics", "doctor", 2), ("pediatrics", "doctor", 2),
              ("child-health", "doctor", 1), ("nursing", "nurse", 1),
              ("laboratory", "technician", 1))),
    _Spec("qxch", "hospital", "清溪县人民医院", "Qingxi County People's Hospital",
          "390121", "清溪路100号", (
              ("internal-medicine", "doctor", 2), ("cardiology", "doctor", 1),
              ("nursing", "nurse", 1), ("laboratory", "technician", 1))),
    _Spec("chc-chengdong", "chc", "江城区城东街道社区卫生服务中心",
          "Chengdong Subdistrict Community Health Centre, Jiangcheng District",
          "390102", "东风路36号", _CHC_STAFF, part_of="ljh1"),
    _Spec("chc-binjiang", "chc", "江城区滨江街道社区卫生服务中心",
          "Binjiang Subdistrict Community Health Centre, Jiangcheng District",
          "390102", "望江路12号", _CHC_STAFF, part_of="ljh1"),
    _Spec("chc-xinhua", "chc", "临东区新华街道社区卫生服务中心",
          "Xinhua Subdistrict Community Health Centre, Lindong District",
          "390103", "建设路70号", _CHC_STAFF, part_of="ljh1"),
    _Spec("chc-donghu", "chc", "临东区东湖街道社区卫生服务中心",
          "Donghu Subdistrict Community Health Centre, Lindong District",
          "390103", "湖滨路8号", _CHC_STAFF, part_of="ljh1"),
    _Spec("chc-xishan", "chc", "临西区西山街道社区卫生服务中心",
          "Xishan Subdistrict Community Health Centre, Linxi District",
          "390104", "工业路45号", _CHC_STAFF, part_of="ljh1"),
    _Spec("chc-chengguan", "chc", "清溪县城关镇社区卫生服务中心",
          "Chengguan Town Community Health Centre, Qingxi County",
          "390121", "南门路9号", _CHC_STAFF, part_of="qxch"),
)  # fmt: skip

_KIND_TEXT: dict[Kind, str] = {
    "hospital": "医院",
    "chc": "社区卫生服务中心",
    "authority": "卫生行政机关",
}
# HL7 organization-type: providers for care, government bodies for the authorities, except
# the insurance bureau, which pays claims.
_HL7_ORG_TYPE = {
    "prov": ("Healthcare Provider", "医疗卫生机构"),
    "govt": ("Government", "政府机关"),
    "pay": ("Payer", "医保经办机构"),
}


@dataclass(frozen=True)
class Clinician:
    practitioner_id: str
    role_id: str
    name: str
    department: str
    role: Role

    @property
    def ref(self) -> dict[str, str]:
        return reference(f"Practitioner/{self.practitioner_id}", self.name)


@dataclass(frozen=True)
class Institution:
    code: str
    kind: Kind
    name: str
    alias: str
    district: District
    organization_id: str
    location_id: str | None
    staff: tuple[Clinician, ...]

    @property
    def ref(self) -> dict[str, str]:
        return reference(f"Organization/{self.organization_id}", self.name)

    @property
    def location_ref(self) -> dict[str, str] | None:
        if self.location_id is None:
            return None
        return reference(f"Location/{self.location_id}", self.name)

    def clinicians(self, department: str) -> tuple[Clinician, ...]:
        return tuple(c for c in self.staff if c.department == department)


@dataclass(frozen=True)
class Region:
    institutions: dict[str, Institution]  # by org code
    medication_ids: dict[str, str]  # formulary product key → Medication id
    bundle: Resource

    def of_kind(self, kind: Kind) -> tuple[Institution, ...]:
        return tuple(i for i in self.institutions.values() if i.kind == kind)

    def streets(self) -> Iterator[tuple[District, Street]]:
        for district in DISTRICTS:
            for street in district.streets:
                yield district, street


def build_region(seed: int, fake: Faker) -> Region:
    """The institutions and staff of ``seed``'s world, and the transaction Bundle loading them."""
    rng = random.Random(f"{seed}/region")
    fake.seed_instance(f"{seed}/region")
    builder = BundleBuilder(seed)
    districts = {d.code: d for d in DISTRICTS}
    institutions: dict[str, Institution] = {}
    org_urls: dict[str, str] = {}

    # Organizations first, lead hospitals before the centres that are part of them.
    for spec in _SPECS:
        district = districts[spec.district]
        org = _organization(spec, district, rng)
        if spec.part_of:
            org["partOf"] = {"reference": org_urls[spec.part_of]}
        org_urls[spec.code] = builder.add(f"org/{spec.code}", org)

    for spec in _SPECS:
        district = districts[spec.district]
        location_id = None
        if spec.kind != "authority":
            builder.add(f"location/{spec.code}", _location(spec, district, org_urls[spec.code]))
            location_id = builder.id_for(f"location/{spec.code}")
        staff = tuple(_staff(spec, builder, fake, rng, org_urls[spec.code]))
        institutions[spec.code] = Institution(
            code=spec.code,
            kind=spec.kind,
            name=spec.name,
            alias=spec.alias,
            district=district,
            organization_id=builder.id_for(f"org/{spec.code}"),
            location_id=location_id,
            staff=staff,
        )

    medication_ids = {}
    for product in PRODUCTS.values():
        builder.add(f"medication/{product.key}", _medication(product))
        medication_ids[product.key] = builder.id_for(f"medication/{product.key}")
    return Region(institutions=institutions, medication_ids=medication_ids, bundle=builder.bundle())


def _address(district: District, line: str) -> dict[str, Any]:
    return {
        "use": "work",
        "type": "physical",
        "text": f"{PROVINCE}{CITY}{district.name}{line}",
        "line": [line],
        "city": CITY,
        "district": district.name,
        "state": PROVINCE,
        "postalCode": district.postal_code,
        "country": "CN",
    }


def _organization(spec: _Spec, district: District, rng: random.Random) -> Resource:
    if spec.kind == "authority":
        hl7_type = "pay" if spec.code == "ljhsa" else "govt"
        uscc_kind = _uscc.GOVERNMENT_BODY
    else:
        hl7_type, uscc_kind = "prov", _uscc.PUBLIC_INSTITUTION
    uscc = _uscc.make_uscc(uscc_kind, district.code, f"{rng.randrange(10**8):08d}")
    return {
        "resourceType": "Organization",
        "identifier": [
            {"use": "official", "type": {"text": "统一社会信用代码"}, "system": ID_USCC,
             "value": uscc},
            {"use": "usual", "system": ID_ORG_CODE, "value": spec.code},
        ],
        "active": True,
        "type": [
            concept("http://terminology.hl7.org/CodeSystem/organization-type", hl7_type,
                    *_HL7_ORG_TYPE[hl7_type]),
            concept(CS_ORGANIZATION_KIND, spec.kind, _KIND_TEXT[spec.kind]),
        ],
        "name": spec.name,
        "alias": [spec.alias],
        "address": [_address(district, spec.line)],
    }  # fmt: skip


def _location(spec: _Spec, district: District, org_url: str) -> Resource:
    return {
        "resourceType": "Location",
        "status": "active",
        "name": spec.name,
        "alias": [spec.alias],
        "mode": "instance",
        "physicalType": concept(
            "http://terminology.hl7.org/CodeSystem/location-physical-type", "bu", "Building"
        ),
        "address": _address(district, spec.line),
        "managingOrganization": {"reference": org_url},
    }


def _staff(
    spec: _Spec, builder: BundleBuilder, fake: Faker, rng: random.Random, org_url: str
) -> Iterator[Clinician]:
    location_url = f"urn:uuid:{builder.id_for(f'location/{spec.code}')}"
    for department, role, headcount in spec.staff:
        for n in range(1, headcount + 1):
            key = f"{spec.code}/{department}/{n}"
            # Nursing in China is overwhelmingly female; doctors are close to even.
            female_share = 0.9 if role == "nurse" else 0.5
            sex: Literal["male", "female"] = "female" if rng.random() < female_share else "male"
            name = draw_name(fake, rng, sex)
            practitioner_url = builder.add(
                f"practitioner/{key}",
                {
                    "resourceType": "Practitioner",
                    "identifier": [
                        {"system": ID_PRACTITIONER_LICENCE,
                         "value": f"{rng.randrange(10**14, 10**15)}"},
                    ],
                    "active": True,
                    "name": [name.human_name()],
                    "gender": sex,
                    "qualification": [{"code": {"text": f"执业{_ROLE_TEXT[role]}"}}],
                },
            )  # fmt: skip
            role_concept: dict[str, Any] = {"text": _ROLE_TEXT[role]}
            if role != "technician":  # HL7's practitioner-role has no laboratory technician
                role_concept["coding"] = [
                    coding("http://terminology.hl7.org/CodeSystem/practitioner-role", role,
                           role.capitalize())
                ]  # fmt: skip
            builder.add(
                f"practitioner-role/{key}",
                {
                    "resourceType": "PractitionerRole",
                    "active": True,
                    "practitioner": {"reference": practitioner_url, "display": name.text},
                    "organization": {"reference": org_url, "display": spec.name},
                    "code": [role_concept],
                    "specialty": [concept(CS_DEPARTMENT, department, DEPARTMENTS[department])],
                    "location": [{"reference": location_url}],
                },
            )
            yield Clinician(
                practitioner_id=builder.id_for(f"practitioner/{key}"),
                role_id=builder.id_for(f"practitioner-role/{key}"),
                name=name.text,
                department=department,
                role=role,
            )


def _medication(product: Product) -> Resource:
    return {
        "resourceType": "Medication",
        "code": concept(ATC, product.atc, product.atc_display, product.name_zh),
        "status": "active",
        "form": concept(SNOMED, product.form_snomed, product.form_display, product.form_zh),
        "ingredient": [
            {
                "itemCodeableConcept": concept(ATC, i.atc, i.atc_display, i.name_zh),
                "isActive": True,
                "strength": {
                    "numerator": quantity(i.amount, i.unit, i.ucum),
                    "denominator": quantity(i.per, i.per_unit, i.per_ucum),
                },
            }
            for i in product.ingredients
        ],
    }

"""Residents of the demo region: who they are, where they live, how they are identified.

:func:`make_residents` draws the people; :func:`patient_resource` renders one as a FHIR
Patient once the clinical generator knows which institutions gave them a record number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from faker import Faker

from huitong.demo._fhir import Resource, coding, concept
from huitong.demo._names import ChineseName, draw_name
from huitong.demo.region import (
    CITY,
    DISTRICTS,
    NEIGHBOURING_AREA_CODES,
    PROVINCE,
    Clinician,
    District,
    Institution,
    Region,
    Street,
)
from huitong.demo.systems import (
    ID_HEALTH_RECORD,
    ID_MEDICAL_INSURANCE,
    ID_RESIDENT,
    V2_IDENTIFIER_TYPE,
    mrn_system,
)
from huitong.mpi.resident_id import make_resident_id

__all__ = ["FIRST_BIRTH_YEAR", "LAST_BIRTH_YEAR", "Resident", "make_residents", "patient_resource"]

Sex = Literal["male", "female"]

FIRST_BIRTH_YEAR = 1935
LAST_BIRTH_YEAR = 2020
# Share of residents per birth-year band: an ageing city, as Chinese regional registries are.
_BIRTH_BANDS = (
    (1935, 1944, 6),
    (1945, 1954, 12),
    (1955, 1964, 17),
    (1965, 1974, 17),
    (1975, 1984, 15),
    (1985, 1994, 14),
    (1995, 2004, 10),
    (2005, 2020, 9),
)
# First-generation (15-digit) cards were issued 1984-1999 to people aged 16 and over.
_LAST_15_DIGIT_BIRTH_YEAR = 1983
_OLD_ID_SHARE = 0.15
_OLD_ID_EXPIRED = "2012-12-31"  # first-generation cards stopped being valid on 2013-01-01
_INSURANCE_LETTERS = "ABCDEFGHJKLMN"


@dataclass(frozen=True)
class Contact:
    name: ChineseName
    relationship: str  # 母亲, 儿子...
    phone: str


@dataclass(frozen=True)
class Resident:
    index: int
    name: ChineseName
    sex: Sex
    birth: date
    resident_id: str
    old_resident_id: str | None
    phone: str | None  # None for children and some very old people; see contact
    contact: Contact | None
    district: District
    street: Street
    address_line: str
    marital_status: str | None  # v3-MaritalStatus code
    insurance_number: str
    health_record_number: str
    chc: Institution  # managing community health centre
    family_doctor: Clinician

    @property
    def key(self) -> str:
        return f"resident/{self.index}"

    def age_on(self, day: date) -> int:
        before_birthday = (day.month, day.day) < (self.birth.month, self.birth.day)
        return day.year - self.birth.year - before_birthday


def make_residents(
    seed: int, count: int, region: Region, fake: Faker, today: date
) -> list[Resident]:
    """``count`` residents of ``seed``'s world, each drawn from its own seeded generator."""
    streets = list(region.streets())
    weights = [street.population_weight for _, street in streets]
    taken_ids: set[str] = set()
    residents = []
    for index in range(count):
        rng = random.Random(f"{seed}/resident/{index}")
        fake.seed_instance(f"{seed}/resident/{index}")
        district, street = rng.choices(streets, weights)[0]
        residents.append(_resident(index, rng, fake, region, district, street, taken_ids, today))
    return residents


def _resident(
    index: int,
    rng: random.Random,
    fake: Faker,
    region: Region,
    district: District,
    street: Street,
    taken_ids: set[str],
    today: date,
) -> Resident:
    sex: Sex = "male" if rng.random() < 0.5 else "female"
    birth = _birth_date(rng)
    resident_id = _unique_resident_id(rng, _birth_area(rng, district), birth, sex, taken_ids)
    old_id = None
    if birth.year <= _LAST_15_DIGIT_BIRTH_YEAR and rng.random() < _OLD_ID_SHARE:
        old_id = resident_id[:6] + resident_id[8:17]
    name = draw_name(fake, rng, sex)
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    phone: str | None = f"+86 {fake.phone_number()}"
    contact = None
    if age < 16:
        phone = None
        parent_sex: Sex = rng.choice(("male", "female"))
        # Children take the father's surname in most families, so the father shares it.
        parent_name = draw_name(fake, rng, parent_sex)
        if parent_sex == "male":
            parent_name = ChineseName(name.family, parent_name.given)
        relationship = "父亲" if parent_sex == "male" else "母亲"
        contact = Contact(parent_name, relationship, f"+86 {fake.phone_number()}")
    elif age >= 80 and rng.random() < 0.4:
        phone = None
        child_sex: Sex = rng.choice(("male", "female"))
        child_name = draw_name(fake, rng, child_sex)
        if sex == "male":
            child_name = ChineseName(name.family, child_name.given)
        relationship = "儿子" if child_sex == "male" else "女儿"
        contact = Contact(child_name, relationship, f"+86 {fake.phone_number()}")
    chc = region.institutions[street.chc]
    street_no = list(district.streets).index(street) + 1
    return Resident(
        index=index,
        name=name,
        sex=sex,
        birth=birth,
        resident_id=resident_id,
        old_resident_id=old_id,
        phone=phone,
        contact=contact,
        district=district,
        street=street,
        address_line=(
            f"{street.name}{rng.choice(street.roads)}{rng.randint(1, 300)}号"
            f"{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元"
            f"{rng.randint(1, 18)}{rng.randint(1, 4):02d}室"
        ),
        marital_status=_marital_status(rng, age),
        insurance_number=f"{rng.choice(_INSURANCE_LETTERS)}{rng.randrange(10**8):08d}",
        health_record_number=(
            f"{district.code}{street_no:03d}{rng.randint(1, 20):03d}{index + 1:05d}"
        ),
        chc=chc,
        family_doctor=rng.choice(chc.clinicians("general-practice")),
    )


def _birth_date(rng: random.Random) -> date:
    first, last, _ = rng.choices(_BIRTH_BANDS, [w for *_, w in _BIRTH_BANDS])[0]
    start = date(first, 1, 1)
    return start + timedelta(days=rng.randrange((date(last, 12, 31) - start).days + 1))


def _birth_area(rng: random.Random, district: District) -> str:
    # The area code records where a person was first registered, which is not always
    # where they live now: some moved across the city, some came from the next city.
    roll = rng.random()
    if roll < 0.80:
        return district.code
    if roll < 0.92:
        return rng.choice([d.code for d in DISTRICTS if d is not district])
    return rng.choice(NEIGHBOURING_AREA_CODES)


def _unique_resident_id(
    rng: random.Random, area: str, birth: date, sex: Sex, taken: set[str]
) -> str:
    while True:
        seq = rng.randrange(0, 500) * 2 + (1 if sex == "male" else 0)
        number = make_resident_id(area, birth, seq)
        if number not in taken:
            taken.add(number)
            return number


def _marital_status(rng: random.Random, age: int) -> str | None:
    if age < 20:
        return None
    if age < 30:
        return "M" if rng.random() < 0.5 else "S"
    roll = rng.random()
    widowed = 0.25 if age >= 70 else 0.03
    if roll < widowed:
        return "W"
    return "D" if roll < widowed + 0.04 else "M" if roll < 0.96 else "S"


_MARITAL = {"M": "Married", "S": "Never Married", "W": "Widowed", "D": "Divorced"}
_MARITAL_ZH = {"M": "已婚", "S": "未婚", "W": "丧偶", "D": "离婚"}


def patient_resource(resident: Resident, mrns: dict[str, str], region: Region) -> Resource:
    """The FHIR Patient; ``mrns`` maps org code → the MRN that institution gave the person."""
    identifiers: list[dict[str, Any]] = [
        {
            "use": "official",
            "type": {"coding": [coding(V2_IDENTIFIER_TYPE, "NI",
                                       "National unique individual identifier")],
                     "text": "居民身份证号"},
            "system": ID_RESIDENT,
            "value": resident.resident_id,
        },
    ]  # fmt: skip
    if resident.old_resident_id:
        identifiers.append(
            {
                "use": "old",
                "type": {"text": "居民身份证号(15位)"},
                "system": ID_RESIDENT,
                "value": resident.old_resident_id,
                "period": {"end": _OLD_ID_EXPIRED},
            }
        )
    identifiers.append(
        {
            "use": "secondary",
            "type": {"coding": [coding(V2_IDENTIFIER_TYPE, "SB", "Social Beneficiary Identifier")],
                     "text": "医保卡号"},
            "system": ID_MEDICAL_INSURANCE,
            "value": resident.insurance_number,
            "assigner": region.institutions["ljhsa"].ref,
        }
    )  # fmt: skip
    identifiers.append(
        {
            "use": "secondary",
            "type": {"text": "城乡居民健康档案编号"},
            "system": ID_HEALTH_RECORD,
            "value": resident.health_record_number,
            "assigner": resident.chc.ref,
        }
    )
    for org_code, mrn in mrns.items():
        identifiers.append(
            {
                "use": "usual",
                "type": {"coding": [coding(V2_IDENTIFIER_TYPE, "MR", "Medical record number")],
                         "text": "病案号"},
                "system": mrn_system(org_code),
                "value": mrn,
                "assigner": region.institutions[org_code].ref,
            }
        )  # fmt: skip
    patient: Resource = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "active": True,
        "name": [resident.name.human_name()],
    }
    if resident.phone:
        patient["telecom"] = [{"system": "phone", "value": resident.phone, "use": "mobile"}]
    patient["gender"] = resident.sex
    patient["birthDate"] = resident.birth.isoformat()
    patient["address"] = [
        {
            "use": "home",
            "type": "physical",
            "text": f"{PROVINCE}{CITY}{resident.district.name}{resident.address_line}",
            "line": [resident.address_line],
            "city": CITY,
            "district": resident.district.name,
            "state": PROVINCE,
            "postalCode": resident.district.postal_code,
            "country": "CN",
        }
    ]
    if resident.marital_status:
        code = resident.marital_status
        patient["maritalStatus"] = concept(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
            code,
            _MARITAL[code],
            _MARITAL_ZH[code],
        )
    if resident.contact:
        patient["contact"] = [
            {
                "relationship": [
                    concept("http://terminology.hl7.org/CodeSystem/v2-0131", "N", "Next-of-Kin",
                            resident.contact.relationship)
                ],
                "name": resident.contact.name.human_name(),
                "telecom": [{"system": "phone", "value": resident.contact.phone, "use": "mobile"}],
            }
        ]  # fmt: skip
    patient["communication"] = [
        {
            "language": concept("urn:ietf:bcp:47", "zh-CN", "Chinese (China)", "中文"),
            "preferred": True,
        }
    ]
    patient["generalPractitioner"] = [resident.family_doctor.ref]
    patient["managingOrganization"] = resident.chc.ref
    return patient

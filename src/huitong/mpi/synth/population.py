"""A synthetic Chinese population with ground truth, and the noise a region's records carry.

:func:`generate_people` draws people (Faker ``zh_CN`` names weighted by surname frequency,
real GB/T 2260 districts, valid resident ID numbers, mobile numbers) including twins who
share family name, birth date, address and phone but not given name or ID number.
:func:`noisy_patients` then writes 1–4 source records per person, as FHIR Patient dicts
from different institutions, each distorted by :class:`Noise`: homophone and
near-homophone characters, traditional forms, Latin-script names, swapped day/month,
one-digit birth-date typos, ID typos, missing IDs, 15-digit old IDs, changed or missing
phones and addresses. Everything is seeded: the same seed gives the same population.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import opencc
from faker import Faker

from huitong.mpi.normalize.addresses import _divisions, division_name
from huitong.mpi.normalize.identifiers import (
    ID_HEALTH_RECORD,
    ID_MEDICAL_INSURANCE,
    ID_RESIDENT,
    MRN_PREFIX,
)
from huitong.mpi.normalize.names import han_pinyin, surname_pinyin
from huitong.mpi.resident_id import make_resident_id
from huitong.mpi.synth.homophones import homophones, name_characters, near_homophones

__all__ = ["Noise", "Person", "SourcePatient", "generate_people", "noisy_patients"]


@dataclass(frozen=True, slots=True)
class Person:
    entity: int
    family: str
    given: str
    sex: str
    birth: date
    resident_id: str
    phone: str
    district_code: str
    street: str
    insurance: str
    health_record: str


@dataclass(frozen=True, slots=True)
class SourcePatient:
    entity: int  # ground truth: records with the same entity are the same person
    org: str
    patient: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Noise:
    """Probability of each distortion, per source record after the first."""

    homophone: float = 0.10
    near_homophone: float = 0.05
    traditional: float = 0.08
    latin_name: float = 0.05
    swap_day_month: float = 0.03
    birth_typo: float = 0.03
    id_missing: float = 0.20
    id_typo: float = 0.04
    old_15_digit: float = 0.05
    phone_changed: float = 0.15
    phone_missing: float = 0.20
    address_changed: float = 0.15
    address_missing: float = 0.10
    orgs: tuple[str, ...] = field(default=("rmyy", "zyy", "fybj", "sqws1", "sqws2", "xyy"))


def _districts() -> list[str]:
    return [c for c in _divisions().names if not c.endswith("00")]


def generate_people(n: int, *, seed: int = 0, twin_rate: float = 0.02) -> list[Person]:
    """``n`` people (twins count towards ``n``), entity ids ``0..n-1``."""
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    districts = _districts()
    given_chars = name_characters()
    people: list[Person] = []
    used_ids: set[str] = set()
    while len(people) < n:
        sex = rng.choice(("male", "female"))
        family = fake.last_name()
        size = 1 if rng.random() < 0.3 else 2
        given = "".join(rng.choice(given_chars) for _ in range(size))
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 94))
        district = rng.choice(districts)
        phone = _mobile(rng)
        street = f"{fake.street_name()}{rng.randint(1, 400)}号{rng.randint(1, 30)}栋"
        rid = _resident_id(rng, district, birth, sex, used_ids)
        person = Person(
            len(people), family, given, sex, birth, rid, phone, district, street,
            f"{rng.randrange(10**11, 10**12)}", f"{district}{rng.randrange(10**10):010d}",
        )  # fmt: skip
        people.append(person)
        if rng.random() < twin_rate and len(people) < n:
            twin_sex = rng.choice(("male", "female"))
            twin_given = "".join(rng.choice(given_chars) for _ in range(len(given)))
            people.append(
                Person(
                    len(people), family, twin_given, twin_sex, birth,
                    _resident_id(rng, district, birth, twin_sex, used_ids), phone, district,
                    street, f"{rng.randrange(10**11, 10**12)}",
                    f"{district}{rng.randrange(10**10):010d}",
                )
            )
    return people


def _resident_id(rng: random.Random, area: str, birth: date, sex: str, used: set[str]) -> str:
    while True:
        seq = rng.randrange(0, 1000)
        if (seq % 2 == 1) != (sex == "male"):
            seq = (seq + 1) % 1000
        rid = make_resident_id(area, birth, seq)
        if rid not in used:
            used.add(rid)
            return rid


_T2S = None


def _traditional(text: str) -> str:
    global _T2S
    if _T2S is None:
        _T2S = opencc.OpenCC("s2t")
    return str(_T2S.convert(text))


def _swap_char(rng: random.Random, text: str, near: bool) -> str:
    positions = list(range(len(text)))
    rng.shuffle(positions)
    for pos in positions:
        options = near_homophones(text[pos]) if near else homophones(text[pos])
        if options:
            return text[:pos] + rng.choice(options) + text[pos + 1 :]
    return text


def _typo(rng: random.Random, digits: str, positions: range) -> str:
    pos = rng.choice(positions)
    new = rng.choice([d for d in "0123456789" if d != digits[pos]])
    return digits[:pos] + new + digits[pos + 1 :]


def noisy_patients(
    people: list[Person],
    *,
    seed: int = 0,
    noise: Noise | None = None,
    max_records: int = 4,
) -> list[SourcePatient]:
    """Source records for ``people``: each person 1..``max_records`` records (skewed to 1-2)."""
    noise = noise or Noise()
    rng = random.Random(seed + 1)
    fake = Faker("zh_CN")
    fake.seed_instance(seed + 1)
    districts = _districts()
    out: list[SourcePatient] = []
    serial = 0
    for person in people:
        count = min(max_records, 1 + int(rng.expovariate(1.1)))
        for copy in range(count):
            serial += 1
            org = rng.choice(noise.orgs)
            out.append(
                SourcePatient(
                    person.entity,
                    org,
                    _patient(person, org, f"p{serial}", copy > 0, noise, rng, fake, districts),
                )
            )
    rng.shuffle(out)
    return out


def _patient(
    p: Person,
    org: str,
    pid: str,
    distort: bool,
    noise: Noise,
    rng: random.Random,
    fake: Faker,
    districts: list[str],
) -> dict[str, Any]:
    def hit(prob: float) -> bool:
        return distort and rng.random() < prob

    family, given = p.family, p.given
    if hit(noise.homophone):
        if rng.random() < 0.5:
            family = _swap_char(rng, family, near=False)
        else:
            given = _swap_char(rng, given, near=False)
    if hit(noise.near_homophone):
        given = _swap_char(rng, given, near=True)
    if hit(noise.traditional):
        family, given = _traditional(family), _traditional(given)
    if hit(noise.latin_name):
        fam_py, giv_py = surname_pinyin(p.family), han_pinyin(given)
        style = rng.randrange(3)
        text = (
            f"{fam_py.upper()} {giv_py.capitalize()}" if style == 0
            else f"{giv_py.capitalize()} {fam_py.capitalize()}" if style == 1
            else f"{fam_py.capitalize()}, {giv_py.capitalize()}"
        )  # fmt: skip
        name: dict[str, Any] = {"text": text}
    else:
        name = {"text": family + given, "family": family, "given": [given]}
    birth = p.birth.strftime("%Y%m%d")
    if hit(noise.swap_day_month) and p.birth.day <= 12:
        birth = birth[:4] + birth[6:8] + birth[4:6]
    elif hit(noise.birth_typo):
        birth = _typo(rng, birth, range(2, 8))
    birth_iso = f"{birth[:4]}-{birth[4:6]}-{birth[6:8]}"
    identifiers: list[dict[str, Any]] = []
    if not hit(noise.id_missing):
        rid = p.resident_id
        if hit(noise.id_typo):
            rid = _typo(rng, rid, range(17))
        elif hit(noise.old_15_digit) and p.birth.year < 1984:
            rid = rid[:6] + rid[8:17]
        identifiers.append({"system": ID_RESIDENT, "value": rid})
    if rng.random() < 0.6:
        identifiers.append({"system": ID_MEDICAL_INSURANCE, "value": p.insurance})
    if rng.random() < 0.3:
        identifiers.append({"system": ID_HEALTH_RECORD, "value": p.health_record})
    identifiers.append({"system": f"{MRN_PREFIX}{org}", "value": f"{org.upper()}{pid}"})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": identifiers,
        "name": [name],
        "gender": p.sex,
        "birthDate": birth_iso,
    }
    if not hit(noise.phone_missing):
        phone = p.phone
        if hit(noise.phone_changed):
            phone = _mobile(rng)
        patient["telecom"] = [{"system": "phone", "value": _format_phone(rng, phone)}]
    if not hit(noise.address_missing):
        district, street = p.district_code, p.street
        if hit(noise.address_changed):
            district = rng.choice(districts)
            street = f"{fake.street_name()}{rng.randint(1, 400)}号"
        patient["address"] = [_address(rng, district, street)]
    return patient


def _mobile(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def _format_phone(rng: random.Random, phone: str) -> str:
    style = rng.randrange(4)
    if style == 0:
        return phone
    if style == 1:
        return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
    if style == 2:
        return f"0086-{phone}"
    return f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"


def _address(rng: random.Random, district: str, street: str) -> dict[str, Any]:
    province = division_name(district[:2] + "0000")
    city = division_name(district[:4] + "00") or province
    dname = division_name(district)
    if rng.random() < 0.5:
        return {"state": province, "city": city, "district": dname, "line": [street]}
    return {"text": f"{province}{city if city != province else ''}{dname}{street}"}

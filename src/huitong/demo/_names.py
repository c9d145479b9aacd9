"""Chinese personal names from Faker's zh_CN lists, split into FHIR family and given parts."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from faker import Faker

# Faker's zh_CN list holds one compound surname (欧阳) at a weight too low to show up in a
# few hundred people; these are common enough in real registries that name handling must
# meet them, so a small share of people draw from this list instead.
COMPOUND_SURNAMES = (
    "欧阳", "司马", "诸葛", "上官", "司徒", "东方", "皇甫", "令狐",
    "慕容", "夏侯", "公孙", "长孙", "尉迟", "宇文", "端木", "南宫",
)  # fmt: skip
_COMPOUND_SHARE = 0.02
# Faker's given names are mostly one character, while about four in five Chinese given
# names have two. Putting a common leading character before Faker's gives natural names
# (建 + 伟, 晓 + 燕) and fewer namesakes, which identity matching needs to be meaningful.
_TWO_CHAR_GIVEN_SHARE = 0.6
_LEADING_CHARS = {
    "male": "建志国海永文俊家明子宏德晓浩振立春伟",
    "female": "晓丽玉春秀雅思欣美雪佳婉慧月金淑",
}


@dataclass(frozen=True)
class ChineseName:
    family: str
    given: str

    @property
    def text(self) -> str:
        # Chinese order: family name first, no space.
        return self.family + self.given

    def human_name(self) -> dict[str, Any]:
        """FHIR HumanName (https://hl7.org/fhir/R4/datatypes.html#HumanName)."""
        return {"use": "official", "text": self.text, "family": self.family, "given": [self.given]}


def draw_name(fake: Faker, rng: random.Random, sex: Literal["male", "female"]) -> ChineseName:
    """A name for a person of ``sex``; ``fake`` and ``rng`` must already be seeded."""
    compound = rng.random() < _COMPOUND_SHARE
    family = rng.choice(COMPOUND_SURNAMES) if compound else fake.last_name()
    first = fake.first_name_male if sex == "male" else fake.first_name_female
    given = first()
    if len(given) == 1 and rng.random() < _TWO_CHAR_GIVEN_SHARE:
        leading = rng.choice(_LEADING_CHARS[sex])
        if leading != given:
            given = leading + given
    return ChineseName(family=family, given=given)

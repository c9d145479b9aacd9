"""What the rules may know beyond the resource itself.

Consistency and timeliness rules need facts from outside the resource being written: the
subject patient's sex and dates, the sexes other institutions recorded for the same person,
who sent the data and when it arrived. :class:`QualityContext` is the seam: the write
pipeline implements it over the repository and the MPI, tests use :class:`InMemoryContext`.
All times are microseconds since the Unix epoch, UTC (the unit of :mod:`huitong.clock`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["InMemoryContext", "QualityContext", "RecordedSex", "Subject"]


@dataclass(frozen=True, slots=True)
class Subject:
    """The facts about a patient that consistency rules compare against.

    ``gender`` is the FHIR administrative gender code; ``birth_date`` and ``deceased`` are the
    FHIR date/dateTime strings as stored (``deceased`` True when only ``deceasedBoolean`` is
    known).
    """

    gender: str | None = None
    birth_date: str | None = None
    deceased: str | bool | None = None

    @classmethod
    def from_patient(cls, patient: Mapping[str, Any]) -> Subject:
        gender = patient.get("gender")
        birth = patient.get("birthDate")
        deceased: str | bool | None = None
        if isinstance(patient.get("deceasedDateTime"), str):
            deceased = patient["deceasedDateTime"]
        elif patient.get("deceasedBoolean") is True:
            deceased = True
        return cls(
            gender=gender if isinstance(gender, str) else None,
            birth_date=birth if isinstance(birth, str) else None,
            deceased=deceased,
        )


@dataclass(frozen=True, slots=True)
class RecordedSex:
    """The administrative gender one institution recorded for the person."""

    organization: str  # "Organization/<id>" of the recording institution
    gender: str


@runtime_checkable
class QualityContext(Protocol):
    """Facts about the write in progress.

    ``now`` is the check time; ``received_at`` when the data reached Huitong (None: now);
    ``source_organization`` the sending institution's reference; ``live_since`` when that
    institution's feed went live (None: not known), before which its events are history
    the timeliness rules do not judge. ``subject`` answers for a
    ``Patient/<id>`` reference (None when unknown); ``sexes_elsewhere`` lists, for a Patient
    resource being written, the genders *other* institutions recorded for the same person
    (found through the MPI's links or its matching), excluding this record.
    """

    @property
    def now(self) -> int: ...

    @property
    def received_at(self) -> int | None: ...

    @property
    def source_organization(self) -> str | None: ...

    @property
    def live_since(self) -> int | None: ...

    def subject(self, reference: str) -> Subject | None: ...

    def sexes_elsewhere(self, patient: Mapping[str, Any]) -> Sequence[RecordedSex]: ...


@dataclass(slots=True)
class InMemoryContext:
    """A :class:`QualityContext` over plain dictionaries, for tests and offline scoring."""

    now: int
    received_at: int | None = None
    source_organization: str | None = None
    live_since: int | None = None
    patients: dict[str, Subject] = field(default_factory=dict)
    sexes: dict[str, list[RecordedSex]] = field(default_factory=dict)  # by "Patient/<id>"

    def subject(self, reference: str) -> Subject | None:
        return self.patients.get(reference)

    def sexes_elsewhere(self, patient: Mapping[str, Any]) -> Sequence[RecordedSex]:
        return self.sexes.get(f"Patient/{patient.get('id')}", ())

    def add_patient(self, patient: Mapping[str, Any]) -> None:
        """Remember a Patient resource's facts under ``Patient/<id>``."""
        self.patients[f"Patient/{patient['id']}"] = Subject.from_patient(patient)

"""A linkage specification: the comparisons, deterministic rules and blocking keys of a model.

:data:`IDENTITY_SPEC` is Huitong's specification for :class:`IdentityRecord`; benchmarks
build their own for other record shapes and run the same training and scoring code.
Specifications are code; a trained model (:mod:`huitong.mpi.model`) names the one it was
trained for, and that name is how its JSON finds it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic

from huitong.mpi.blocking import blocking_keys
from huitong.mpi.compare.comparison import Comparison, R
from huitong.mpi.compare.contact import (
    ADDRESS_LEVELS,
    PHONE_LEVELS,
    compare_address,
    compare_phone,
)
from huitong.mpi.compare.dates import DATE_LEVELS, compare_birth
from huitong.mpi.compare.identifiers import IDENTIFIER_LEVELS, compare_identifiers, compare_sex
from huitong.mpi.compare.names import NAME_LEVELS, compare_family, compare_given
from huitong.mpi.compare.resident_id import RESIDENT_ID_LEVELS, compare_resident_id
from huitong.mpi.record import IdentityRecord

__all__ = ["IDENTITY_SPEC", "SPECS", "LinkageSpec", "Rule", "register_spec"]

Levels = Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """A deterministic rule over the pair's levels (``{"resident_id": "exact", ...}``).

    ``applies`` returning true makes the pair certain, whatever the weights say.
    """

    name: str
    applies: Callable[[Levels], bool]


@dataclass(frozen=True, slots=True)
class LinkageSpec(Generic[R]):
    name: str
    comparisons: tuple[Comparison[R], ...]
    blocking_keys: Callable[[R], Iterable[str]]
    rules: tuple[Rule, ...] = ()
    # Known answers used while training (not while scoring): ``True`` a sure match,
    # ``False`` a sure non-match, ``None`` for EM to decide. They keep EM from mistaking a
    # household (twins share surname, birth date, phone and address) for one person.
    training_label: Callable[[Levels], bool | None] | None = None


def _first_family(r: IdentityRecord) -> str | None:
    return r.names[0].family if r.names else None


def _first_given(r: IdentityRecord) -> str | None:
    return r.names[0].given if r.names else None


def _agreeing_resident_id(levels: Levels) -> bool:
    """A valid, agreeing resident ID decides unless name or birth date contradicts it.

    Contradiction: both family and given name ``different``, or a birth date that is not
    even a typo or swap away (``year``/``different``).
    """
    if levels.get("resident_id") not in ("exact", "upgraded"):
        return False
    names_contradict = (
        levels.get("family_name") == "different" and levels.get("given_name") == "different"
    )
    birth_contradicts = levels.get("birth_date") in ("year", "different")
    return not names_contradict and not birth_contradicts


def _identity_training_label(levels: Levels) -> bool | None:
    """Two valid, different resident ID numbers are two people (GB 11643 numbers are
    issued once); a valid agreeing number that nothing contradicts is one person."""
    if levels.get("resident_id") == "different":
        return False
    if _agreeing_resident_id(levels):
        return True
    return None


IDENTITY_SPEC: LinkageSpec[IdentityRecord] = LinkageSpec(
    name="identity",
    comparisons=(
        Comparison("resident_id", RESIDENT_ID_LEVELS, compare_resident_id),
        Comparison("family_name", NAME_LEVELS, compare_family, _first_family),
        Comparison("given_name", NAME_LEVELS, compare_given, _first_given),
        Comparison("birth_date", DATE_LEVELS, compare_birth),
        Comparison("sex", ("exact", "different"), compare_sex),
        Comparison("phone", PHONE_LEVELS, compare_phone),
        Comparison("address", ADDRESS_LEVELS, compare_address),
        Comparison("identifier", IDENTIFIER_LEVELS, compare_identifiers),
    ),
    blocking_keys=blocking_keys,
    rules=(Rule("resident-id-agrees", _agreeing_resident_id),),
    training_label=_identity_training_label,
)

SPECS: dict[str, LinkageSpec] = {IDENTITY_SPEC.name: IDENTITY_SPEC}  # type: ignore[type-arg]


def register_spec(spec: LinkageSpec) -> None:  # type: ignore[type-arg]
    """Make ``spec`` findable by name when a model's JSON is loaded."""
    SPECS[spec.name] = spec

"""The rule library Huitong ships: rules as data, and the predicates they name.

Importing this package registers the shipped predicates. :func:`default_rules` is every
shipped rule, in a stable order; a region's configuration selects and tunes them
(:mod:`huitong.quality.ruleset`).
"""

from __future__ import annotations

from huitong.quality.library import _coding, _identity, _measures, _timing
from huitong.quality.library.care import CARE_RULES
from huitong.quality.library.clinical import CLINICAL_RULES
from huitong.quality.library.observation import OBSERVATION_RULES
from huitong.quality.library.patient import PATIENT_RULES, RESIDENT_ID_SYSTEMS
from huitong.quality.model import Rule

__all__ = ["RESIDENT_ID_SYSTEMS", "default_rules"]

# The predicate modules register themselves on import; naming them keeps that explicit.
_PREDICATE_MODULES = (_coding, _identity, _measures, _timing)

_RULES: tuple[Rule, ...] = (
    *PATIENT_RULES,
    *OBSERVATION_RULES,
    *CLINICAL_RULES,
    *CARE_RULES,
)


def default_rules() -> tuple[Rule, ...]:
    """Every shipped rule (ids are unique; a test keeps them so)."""
    return _RULES

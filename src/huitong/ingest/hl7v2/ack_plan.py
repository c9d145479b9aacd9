"""Which acknowledgements to send for one message: original and enhanced mode.

HL7 v2.8 chapter 2, section 2.9 (acknowledgment rules,
https://www.hl7.eu/HL7v2x/v28/std28/ch02.html). In *original* mode (MSH-15 and MSH-16
both empty) the receiver answers every message with one application ACK: AA, AE or AR. In
*enhanced* mode the *accept* ACK (CA / CE / CR: was the message committed to safe storage?)
is governed by MSH-15, and the *application* ACK (AA / AE / AR: what came of processing it)
by MSH-16, each with table 0155: AL always, NE never, ER only on error, SU only on success.
An empty MSH-15 or MSH-16 in enhanced mode is read as AL, so a sender that asked for
enhanced mode is never left without an answer it might be waiting for.

The codes come from the issues' categories through ``CATEGORY_INFO``: a reject (the same
message will fail again: invalid, unsupported) is AR / CR; anything a resend may cure
(database unavailable, internal error, lock) is AE / CE, so the sender retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from huitong.fhir.errors import CATEGORY_INFO
from huitong.ingest.hl7v2.errors import Hl7v2Issue, Severity
from huitong.ingest.hl7v2.header import MessageHeader

__all__ = ["AckCode", "AckPlan", "Outcome", "ack_plan"]


class AckCode(Enum):
    """HL7 table 0008, acknowledgment codes (MSA-1)."""

    AA = "AA"
    AE = "AE"
    AR = "AR"
    CA = "CA"
    CE = "CE"
    CR = "CR"

    @property
    def is_success(self) -> bool:
        return self in (AckCode.AA, AckCode.CA)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one inbound message, as far as acknowledgements care.

    ``stored``: the raw message was committed to durable storage (the accept-level fact);
    ``issues``: errors (severity E) decide the codes, warnings ride along in ERR segments.
    """

    stored: bool
    issues: tuple[Hl7v2Issue, ...] = ()

    @classmethod
    def processed(cls, warnings: tuple[Hl7v2Issue, ...] = ()) -> Outcome:
        """Stored and processed without error."""
        return cls(True, warnings)

    @classmethod
    def failed(cls, issues: tuple[Hl7v2Issue, ...], *, stored: bool) -> Outcome:
        """Rejected or failed, after (``stored=True``) or before durable storage."""
        return cls(stored, issues)

    @property
    def errors(self) -> tuple[Hl7v2Issue, ...]:
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)

    @property
    def application_code(self) -> AckCode:
        """AA without errors; AR if any error is a reject (it would fail again); else AE."""
        codes = {CATEGORY_INFO[i.effective_category].hl7v2_ack for i in self.errors}
        if not codes:
            return AckCode.AA
        return AckCode.AR if "AR" in codes else AckCode.AE

    @property
    def accept_code(self) -> AckCode:
        """CA once stored; otherwise CR for a reject, CE when a resend may succeed."""
        if self.stored:
            return AckCode.CA
        return AckCode.CR if self.application_code is AckCode.AR else AckCode.CE


@dataclass(frozen=True, slots=True)
class AckPlan:
    """The acknowledgements to send, in order; ``None`` means "send none of this kind"."""

    accept: AckCode | None
    application: AckCode | None

    @property
    def codes(self) -> list[AckCode]:
        return [c for c in (self.accept, self.application) if c is not None]


def _wanted(condition: str, code: AckCode) -> bool:
    condition = condition or "AL"
    if condition == "NE":
        return False
    if condition == "ER":
        return not code.is_success
    if condition == "SU":
        return code.is_success
    return True  # AL, and any unknown value: answering is the safe side


def ack_plan(header: MessageHeader, outcome: Outcome) -> AckPlan:
    """Which ACKs the message's header and outcome call for (pure; sends nothing).

    Original mode: always one application ACK. Enhanced mode: the accept ACK if MSH-15
    asks for it; the application ACK only for a stored message and if MSH-16 asks for it
    (a message that was not accepted is never processed, so it has no application result).
    """
    if not header.enhanced_mode:
        return AckPlan(None, outcome.application_code)
    accept = outcome.accept_code
    application = outcome.application_code if outcome.stored else None
    return AckPlan(
        accept if _wanted(header.accept_ack_type, accept) else None,
        application if application and _wanted(header.application_ack_type, application)
        else None,
    )

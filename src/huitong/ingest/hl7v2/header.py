"""The message header (MSH) as data, read best-effort and checked separately.

MSH segment: https://hl7-definition.caristix.com/v2/HL7v2.8/Segments/MSH. Fields are
numbered as in the standard: MSH-1 is the field separator itself, MSH-2 the encoding
characters, so the n-th ``|``-separated piece after ``MSH`` is MSH-(n+1).

:func:`read_header` never fails on a line that starts with ``MSH`` and a separator: whatever
can be read is kept, so an ACK can still be addressed. :func:`check_header` returns the
problems (required fields, supported version, processing id, acknowledgement types) as
issues, leaving the decision to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from huitong.ingest.hl7v2.dtm import parse_dtm
from huitong.ingest.hl7v2.errors import Condition, ErrorLocation, Hl7v2Issue
from huitong.ingest.hl7v2.escape import unescape

__all__ = [
    "ACK_CONDITIONS",
    "PROCESSING_IDS",
    "SUPPORTED_VERSIONS",
    "HierarchicDesignator",
    "MessageHeader",
    "check_header",
    "read_header",
]

SUPPORTED_VERSIONS = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)
PROCESSING_IDS = frozenset({"P", "T", "D"})  # table 0103: production, training, debugging
ACK_CONDITIONS = frozenset({"AL", "NE", "ER", "SU"})  # table 0155


@dataclass(frozen=True, slots=True)
class HierarchicDesignator:
    """An HD (MSH-3 to MSH-6): namespace id, universal id, universal id type.

    ``raw`` is the field exactly as written (still escaped, components joined by the
    message's component separator), so it can be copied into an ACK unchanged.
    """

    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""
    raw: str = ""

    def __str__(self) -> str:
        return self.namespace_id or self.universal_id


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What MSH says about a message. Empty strings stand for fields that are absent."""

    field_separator: str = "|"
    encoding_characters: str = "^~\\&"
    sending_application: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    sending_facility: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    receiving_application: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    receiving_facility: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    datetime_raw: str = ""  # MSH-7 as written
    message_code: str = ""  # MSH-9.1, e.g. ADT
    trigger_event: str = ""  # MSH-9.2, e.g. A01
    message_structure: str = ""  # MSH-9.3, e.g. ADT_A01
    control_id: str = ""  # MSH-10
    processing_id: str = ""  # MSH-11.1 (P, T, D)
    version: str = ""  # MSH-12.1
    accept_ack_type: str = ""  # MSH-15 (AL, NE, ER, SU; empty)
    application_ack_type: str = ""  # MSH-16
    charset: str = ""  # MSH-18, first repetition (the message's default character set)
    field_count: int = 0  # highest MSH field number present

    @property
    def timestamp(self) -> datetime | None:
        """MSH-7 as a datetime (naive when the sender gave no offset), ``None`` if unreadable."""
        return parse_dtm(self.datetime_raw)

    @property
    def message_type(self) -> str:
        """``ADT^A01`` style, for logs and routing (always ``^``-joined)."""
        return "^".join(p for p in (self.message_code, self.trigger_event) if p)

    @property
    def enhanced_mode(self) -> bool:
        """Enhanced acknowledgement mode: MSH-15 or MSH-16 is valued (v2.8 section 2.9.3)."""
        return bool(self.accept_ack_type or self.application_ack_type)

    @property
    def component_separator(self) -> str:
        return self._encoding_char(0, "^")

    @property
    def repetition_separator(self) -> str:
        return self._encoding_char(1, "~")

    @property
    def escape_character(self) -> str:
        return self._encoding_char(2, "\\")

    @property
    def subcomponent_separator(self) -> str:
        return self._encoding_char(3, "&")

    def _encoding_char(self, index: int, default: str) -> str:
        chars = self.encoding_characters
        return chars[index] if len(chars) > index else default


def read_header(msh: str) -> MessageHeader:
    """The header of one MSH segment (without its terminator), best effort.

    ``msh`` must start with ``MSH`` followed by the field separator; anything unreadable
    after that is left empty rather than raised.
    """
    sep = msh[3] if len(msh) > 3 else "|"
    pieces = msh[4:].split(sep) if len(msh) > 3 else []
    # pieces[0] is MSH-2; MSH-n is pieces[n - 2]
    encoding = pieces[0] if pieces else "^~\\&"
    comp = encoding[0] if encoding else "^"
    rep = encoding[1] if len(encoding) > 1 else "~"

    def raw(n: int) -> str:
        return pieces[n - 2] if len(pieces) > n - 2 else ""

    def components(n: int) -> list[str]:
        first_repetition = raw(n).split(rep)[0] if rep != comp else raw(n)
        return [unescape(c, sep, encoding) for c in first_repetition.split(comp)]

    def component(n: int, k: int = 1) -> str:
        parts = components(n)
        return parts[k - 1].strip() if len(parts) >= k else ""

    def hd(n: int) -> HierarchicDesignator:
        parts = [*components(n), "", "", ""]
        return HierarchicDesignator(parts[0], parts[1], parts[2], raw(n))

    return MessageHeader(
        field_separator=sep,
        encoding_characters=encoding,
        sending_application=hd(3),
        sending_facility=hd(4),
        receiving_application=hd(5),
        receiving_facility=hd(6),
        datetime_raw=component(7),
        message_code=component(9, 1).upper(),
        trigger_event=component(9, 2).upper(),
        message_structure=component(9, 3).upper(),
        control_id=component(10),
        processing_id=component(11).upper(),
        version=component(12),
        accept_ack_type=component(15).upper(),
        application_ack_type=component(16).upper(),
        charset=component(18),
        field_count=len(pieces) + 1,
    )


def _issue(condition: Condition, n: int, en: str, zh: str) -> Hl7v2Issue:
    return Hl7v2Issue(condition, en, zh, ErrorLocation("MSH", 1, n))


def check_header(header: MessageHeader) -> list[Hl7v2Issue]:
    """Problems with a header, in field order; empty when the message may be accepted.

    Required: MSH-9 (message code), MSH-10 (control id), MSH-11 (processing id), MSH-12
    (version). The version must be one of :data:`SUPPORTED_VERSIONS` (203), the processing
    id one of table 0103 (202), MSH-15/16 empty or from table 0155 (103).
    """
    issues: list[Hl7v2Issue] = []
    missing = Condition.REQUIRED_FIELD_MISSING
    if not header.message_code:
        issues.append(_issue(missing, 9, "MSH-9 message type is missing",
                             "MSH-9 消息类型缺失"))
    if not header.control_id:
        issues.append(_issue(missing, 10, "MSH-10 message control id is missing",
                             "MSH-10 消息控制号缺失"))
    if not header.processing_id:
        issues.append(_issue(missing, 11, "MSH-11 processing id is missing",
                             "MSH-11 处理标识缺失"))
    elif header.processing_id not in PROCESSING_IDS:
        issues.append(_issue(
            Condition.UNSUPPORTED_PROCESSING_ID, 11,
            "MSH-11 processing id is not P, T or D", "MSH-11 处理标识不是 P、T 或 D"))
    if not header.version:
        issues.append(_issue(missing, 12, "MSH-12 version id is missing",
                             "MSH-12 版本号缺失"))
    elif header.version not in SUPPORTED_VERSIONS:
        issues.append(_issue(
            Condition.UNSUPPORTED_VERSION_ID, 12,
            "MSH-12 version is not supported (2.3 to 2.8 are)",
            "MSH-12 版本不受支持（支持 2.3 至 2.8）"))
    for n, value in ((15, header.accept_ack_type), (16, header.application_ack_type)):
        if value and value not in ACK_CONDITIONS:
            issues.append(_issue(
                Condition.TABLE_VALUE_NOT_FOUND, n,
                f"MSH-{n} acknowledgement type must be AL, NE, ER or SU",
                f"MSH-{n} 确认类型必须为 AL、NE、ER 或 SU"))
    return issues

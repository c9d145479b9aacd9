"""HL7 v2 failures as data: table 0357 conditions, where they occurred, and what to tell people.

Every problem found while decoding, parsing or processing an inbound message is an
:class:`Hl7v2Issue`: a condition from HL7 table 0357 (message error condition codes,
https://terminology.hl7.org/CodeSystem-v2-0357.html), its location in the message (the ERL
datatype: segment id, sequence, field, repetition, component, sub-component), a severity
(table 0516: E, W, I) and a message in English and Simplified Chinese. A failure raises
:class:`Hl7v2Error`, which also carries the best header that could be read, so an ACK can
always be built — even when MSH itself is broken (the control id is then empty).

The acknowledgement code for an issue comes from its :class:`~huitong.fhir.errors.Category`
through :data:`~huitong.fhir.errors.CATEGORY_INFO`, the one place such mappings live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from huitong.fhir.errors import Category, FhirError

if TYPE_CHECKING:
    from huitong.ingest.hl7v2.header import MessageHeader

__all__ = [
    "CONDITION_CATEGORY",
    "Condition",
    "ErrorLocation",
    "Hl7v2Error",
    "Hl7v2Issue",
    "Severity",
    "issue_from_fhir_error",
]


class Condition(Enum):
    """HL7 table 0357, message error condition codes."""

    SUCCESS = "0"
    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT_CODE = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION_ID = "203"
    UNKNOWN_KEY_IDENTIFIER = "204"
    DUPLICATE_KEY_IDENTIFIER = "205"
    APPLICATION_RECORD_LOCKED = "206"
    APPLICATION_INTERNAL_ERROR = "207"

    @property
    def text(self) -> str:
        """The table's display text, as written in ERR-3.2 / ELD-4.2."""
        return _CONDITION_TEXT[self]


_CONDITION_TEXT = {
    Condition.SUCCESS: "Message accepted",
    Condition.SEGMENT_SEQUENCE: "Segment sequence error",
    Condition.REQUIRED_FIELD_MISSING: "Required field missing",
    Condition.DATA_TYPE: "Data type error",
    Condition.TABLE_VALUE_NOT_FOUND: "Table value not found",
    Condition.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    Condition.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    Condition.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    Condition.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    Condition.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    Condition.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    Condition.APPLICATION_RECORD_LOCKED: "Application record locked",
    Condition.APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# A malformed or unsupported message will fail the same way when resent, so it is rejected
# (AR); key, lock and internal errors may pass on a later attempt (AE).
CONDITION_CATEGORY: dict[Condition, Category] = {
    Condition.SUCCESS: Category.INVALID,  # never an error; present so the table is total
    Condition.SEGMENT_SEQUENCE: Category.INVALID,
    Condition.REQUIRED_FIELD_MISSING: Category.INVALID,
    Condition.DATA_TYPE: Category.INVALID,
    Condition.TABLE_VALUE_NOT_FOUND: Category.INVALID,
    Condition.UNSUPPORTED_MESSAGE_TYPE: Category.NOT_SUPPORTED,
    Condition.UNSUPPORTED_EVENT_CODE: Category.NOT_SUPPORTED,
    Condition.UNSUPPORTED_PROCESSING_ID: Category.NOT_SUPPORTED,
    Condition.UNSUPPORTED_VERSION_ID: Category.NOT_SUPPORTED,
    Condition.UNKNOWN_KEY_IDENTIFIER: Category.NOT_FOUND,
    Condition.DUPLICATE_KEY_IDENTIFIER: Category.CONFLICT,
    Condition.APPLICATION_RECORD_LOCKED: Category.CONFLICT,
    Condition.APPLICATION_INTERNAL_ERROR: Category.INTERNAL,
}


class Severity(Enum):
    """HL7 table 0516, error severity (ERR-4)."""

    ERROR = "E"
    WARNING = "W"
    INFORMATION = "I"


@dataclass(frozen=True, slots=True)
class ErrorLocation:
    """Where in the message a problem sits (the ERL datatype; 0 means "not known").

    ``sequence`` is the 1-based occurrence of the segment in the message.
    """

    segment_id: str = ""
    sequence: int = 0
    field: int = 0
    repetition: int = 0
    component: int = 0
    subcomponent: int = 0

    def parts(self) -> list[str]:
        """ERL components, trailing unknown parts dropped."""
        values = [
            self.segment_id,
            *(str(n) if n else "" for n in (
                self.sequence, self.field, self.repetition, self.component, self.subcomponent
            )),
        ]
        while values and not values[-1]:
            values.pop()
        return values

    def __str__(self) -> str:
        return "-".join(p for p in self.parts() if p) or "?"


@dataclass(frozen=True, slots=True)
class Hl7v2Issue:
    """One problem with one message.

    ``category`` decides the acknowledgement code (through ``CATEGORY_INFO``); it defaults to
    the condition's category in :data:`CONDITION_CATEGORY`. The texts must not contain
    personal health information: they are written into ACKs and logs.
    """

    condition: Condition
    en: str
    zh: str
    location: ErrorLocation = field(default_factory=ErrorLocation)
    severity: Severity = Severity.ERROR
    category: Category | None = None

    @property
    def effective_category(self) -> Category:
        return self.category or CONDITION_CATEGORY[self.condition]

    @property
    def text(self) -> str:
        """English and Chinese together, as written into an ACK's user message."""
        return f"{self.en} / {self.zh}"


@dataclass(eq=False)
class Hl7v2Error(Exception):
    """A message could not be decoded, parsed or accepted.

    ``issues`` holds at least one error; ``header`` is the best header that could be read
    (possibly all empty), enough to address an ACK; ``codec`` is the Python codec the ACK
    should be encoded with (the one the inbound bytes were read with, UTF-8 if none).
    """

    issues: tuple[Hl7v2Issue, ...]
    header: MessageHeader
    codec: str = "utf-8"

    def __post_init__(self) -> None:
        Exception.__init__(self, "; ".join(f"{i.condition.value} {i.location}: {i.en}"
                                           for i in self.issues))

    @property
    def condition(self) -> Condition:
        """The first issue's condition."""
        return self.issues[0].condition


_CATEGORY_CONDITION: dict[Category, Condition] = {
    Category.NOT_FOUND: Condition.UNKNOWN_KEY_IDENTIFIER,
    Category.CONFLICT: Condition.DUPLICATE_KEY_IDENTIFIER,
    Category.PRECONDITION_FAILED: Condition.APPLICATION_RECORD_LOCKED,
    Category.INVALID: Condition.DATA_TYPE,
    Category.UNPROCESSABLE: Condition.DATA_TYPE,
    Category.NOT_SUPPORTED: Condition.UNSUPPORTED_MESSAGE_TYPE,
}

_CATEGORY_ZH: dict[Category, str] = {
    Category.INVALID: "数据无效",
    Category.UNPROCESSABLE: "数据不符合 FHIR 规则",
    Category.NOT_SUPPORTED: "不支持的功能",
    Category.NOT_FOUND: "未找到引用的记录",
    Category.GONE: "记录已删除",
    Category.CONFLICT: "记录冲突",
    Category.PRECONDITION_FAILED: "记录正被修改",
    Category.TOO_LARGE: "消息过大",
    Category.UNAUTHORIZED: "未认证",
    Category.FORBIDDEN: "无权限",
    Category.TOO_MANY_REQUESTS: "请求过多，请稍后重发",
    Category.UNAVAILABLE: "服务暂不可用，请稍后重发",
    Category.INTERNAL: "内部错误，请稍后重发",
}


def issue_from_fhir_error(
    error: FhirError, location: ErrorLocation | None = None
) -> Hl7v2Issue:
    """The ACK-side view of a failure raised by the repository or the mapping.

    The category is kept (so ``UNAVAILABLE`` still acknowledges AE and the sender retries);
    the table 0357 condition is the closest one, 207 (application internal error) when
    none fits. The Chinese text names the category; the English text is the error's own,
    without the values it may quote (:func:`huitong.ingest.redact.safe_error_text`: an ACK
    names the element and the rule, never the patient's data).
    """
    from huitong.ingest.redact import safe_error_text  # the ingest package imports this one

    condition = _CATEGORY_CONDITION.get(error.category, Condition.APPLICATION_INTERNAL_ERROR)
    return Hl7v2Issue(
        condition,
        safe_error_text(error),
        _CATEGORY_ZH.get(error.category, "处理失败"),
        location or ErrorLocation(),
        category=error.category,
    )

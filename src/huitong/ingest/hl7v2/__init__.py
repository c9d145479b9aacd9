"""HL7 v2: decoding, the message header, parsing and acknowledgements.

The FHIR mapping lives in the ``mapping`` subpackage and is imported from there, not here.
"""

from huitong.ingest.hl7v2.ack import DEFAULT_ACK_VERSION, Ack, build_ack, build_acks
from huitong.ingest.hl7v2.ack_plan import AckCode, AckPlan, Outcome, ack_plan
from huitong.ingest.hl7v2.decode import DecodedMessage, decode_message
from huitong.ingest.hl7v2.errors import (
    Condition,
    ErrorLocation,
    Hl7v2Error,
    Hl7v2Issue,
    Severity,
    issue_from_fhir_error,
)
from huitong.ingest.hl7v2.header import (
    SUPPORTED_VERSIONS,
    HierarchicDesignator,
    MessageHeader,
    check_header,
    read_header,
)
from huitong.ingest.hl7v2.parse import ParsedMessage, parse, parse_decoded

__all__ = [
    "DEFAULT_ACK_VERSION",
    "SUPPORTED_VERSIONS",
    "Ack",
    "AckCode",
    "AckPlan",
    "Condition",
    "DecodedMessage",
    "ErrorLocation",
    "HierarchicDesignator",
    "Hl7v2Error",
    "Hl7v2Issue",
    "MessageHeader",
    "Outcome",
    "ParsedMessage",
    "Severity",
    "ack_plan",
    "build_ack",
    "build_acks",
    "check_header",
    "decode_message",
    "issue_from_fhir_error",
    "parse",
    "parse_decoded",
    "read_header",
]

"""Building ACK messages: MSH, MSA and one ERR per issue, in the sender's own encoding.

HL7 v2.8 chapter 2, sections 2.9 (acknowledgments) and 2.14.5 (ERR,
https://hl7-definition.caristix.com/v2/HL7v2.8/Segments/ERR). The ACK's MSH swaps sending
and receiving application/facility, keeps the inbound version, separators, processing id
and character set, and gets its own control id and timestamp from the injected id factory
and clock. MSA-2 echoes the inbound control id (empty when it could not be read).

ERR layout depends on the version:

* v2.5 and later: ERR-2 error location (ERL), ERR-3 HL7 error code (CWE, table 0357),
  ERR-4 severity (table 0516), ERR-8 user message (English / Chinese);
* before v2.5: ERR-1 error code and location (ELD: segment^sequence^field^code&text&HL70357),
  with the user message in MSA-3 and the first condition in MSA-6.

The user message carries the Chinese text only when the ACK's codec can encode it (a
sender that declared ``ASCII`` gets English). Nothing here performs I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import hl7

from huitong.clock import Clock, IdFactory
from huitong.ingest.hl7v2.ack_plan import AckCode, Outcome, ack_plan
from huitong.ingest.hl7v2.charsets import codec_for_charset
from huitong.ingest.hl7v2.dtm import format_dtm
from huitong.ingest.hl7v2.errors import Hl7v2Issue, Severity
from huitong.ingest.hl7v2.escape import escape
from huitong.ingest.hl7v2.header import MessageHeader

__all__ = ["DEFAULT_ACK_VERSION", "Ack", "build_ack", "build_acks", "uses_legacy_err"]

DEFAULT_ACK_VERSION = "2.8"  # when the inbound MSH-12 could not be read
_CHARSET_LABEL = {"utf-8": "UNICODE UTF-8", "gb18030": "GB 18030-2000"}


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledgement message: its text (segments ended by CR) and how to encode it."""

    text: str
    codec: str
    code: AckCode
    control_id: str

    def encode(self) -> bytes:
        """The ACK's bytes in the inbound message's character set."""
        return self.text.encode(self.codec, errors="replace")

    @property
    def message(self) -> hl7.Message:
        return hl7.parse(self.text)


def uses_legacy_err(version: str) -> bool:
    """Whether ``version`` predates v2.5 and so uses the ERR-1 (ELD) layout."""
    numbers = re.findall(r"\d+", version)
    if not numbers:
        return False
    key = tuple(int(n) for n in numbers[:2])
    return key < (2, 5)


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _user_message(issue: Hl7v2Issue, codec: str) -> str:
    return issue.text if _encodable(issue.text, codec) else issue.en


def _charset_field(header: MessageHeader, codec: str) -> str:
    """MSH-18 for the ACK: the inbound value when it names the codec used; empty when the
    inbound was empty and read as the default UTF-8; else the table-0211 name of the codec
    actually used (e.g. after a GB 18030 fallback)."""
    if header.charset and codec_for_charset(header.charset) == codec:
        return header.charset
    if not header.charset and codec == "utf-8":
        return ""
    return _CHARSET_LABEL.get(codec, header.charset)


def build_ack(
    header: MessageHeader,
    code: AckCode,
    issues: tuple[Hl7v2Issue, ...] = (),
    *,
    clock: Clock,
    new_id: IdFactory,
    codec: str | None = None,
) -> Ack:
    """One ACK answering the message with ``header``.

    ``codec`` is the one the inbound message was read with (``ParsedMessage.codec`` or
    ``Hl7v2Error.codec``); by default the codec MSH-18 names, else UTF-8. Warnings appear
    as severity-W ERR segments from v2.5 on; the legacy ERR layout has no severity, so
    before v2.5 only errors are written.
    """
    codec = codec or codec_for_charset(header.charset) or "utf-8"
    sep = header.field_separator
    enc = header.encoding_characters
    comp, sub = header.component_separator, header.subcomponent_separator

    def esc(value: str) -> str:
        return escape(value, sep, enc)

    version = header.version or DEFAULT_ACK_VERSION
    legacy = uses_legacy_err(version)
    trigger = ["ACK", esc(header.trigger_event)]
    if version not in ("2.1", "2.2", "2.3"):  # MSH-9.3 message structure from v2.3.1
        trigger.append("ACK")
    control_id = new_id()
    msh = [
        "MSH", enc,
        header.receiving_application.raw, header.receiving_facility.raw,
        header.sending_application.raw, header.sending_facility.raw,
        format_dtm(clock()), "", comp.join(trigger).rstrip(comp), esc(control_id),
        esc(header.processing_id or "P"), esc(version), "", "",
        "NE" if header.enhanced_mode else "", "NE" if header.enhanced_mode else "",
        "", esc(_charset_field(header, codec)),
    ]
    errors = [i for i in issues if i.severity is Severity.ERROR]
    msa = ["MSA", code.value, esc(header.control_id)]
    if legacy and errors:
        first = errors[0].condition
        msa += [esc("; ".join(_user_message(i, codec) for i in errors)), "", "",
                comp.join((first.value, esc(first.text), "HL70357"))]
    segments = [msh, msa]
    for issue in (errors if legacy else issues):
        loc = [esc(p) for p in issue.location.parts()]
        if legacy:
            code_ce = sub.join((issue.condition.value, esc(issue.condition.text), "HL70357"))
            eld = [*[*loc, "", "", ""][:3], code_ce]
            segments.append(["ERR", comp.join(eld)])
        else:
            erl = comp.join(loc) if issue.location.segment_id else ""
            cwe = comp.join((issue.condition.value, esc(issue.condition.text), "HL70357"))
            segments.append(["ERR", "", erl, cwe, issue.severity.value, "", "", "",
                             esc(_user_message(issue, codec))])
    lines = [_join_segment(s, sep) for s in segments]
    return Ack("\r".join(lines) + "\r", codec, code, control_id)


def _join_segment(fields: list[str], sep: str) -> str:
    if fields[0] == "MSH":  # MSH-1 is the separator itself, so MSH-2 follows it directly
        body = sep.join(fields[1:])
        return ("MSH" + sep + body).rstrip(sep)
    return sep.join(fields).rstrip(sep)


def build_acks(
    header: MessageHeader,
    outcome: Outcome,
    *,
    clock: Clock,
    new_id: IdFactory,
    codec: str | None = None,
) -> list[Ack]:
    """Every ACK :func:`~huitong.ingest.hl7v2.ack_plan.ack_plan` calls for, in order
    (accept first). Empty when the sender asked for none."""
    warnings = tuple(i for i in outcome.issues if i.severity is not Severity.ERROR)
    # A CA only says "stored"; processing errors belong to the application ACK.
    return [
        build_ack(header, code, warnings if code.is_success else outcome.issues,
                  clock=clock, new_id=new_id, codec=codec)
        for code in ack_plan(header, outcome).codes
    ]

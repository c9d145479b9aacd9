"""Bytes on the wire → one HL7 v2 message as text, in its declared character set.

HL7 v2.8 chapter 2, section 2.7 (message construction) and MSH-18 (character set,
https://hl7-definition.caristix.com/v2/HL7v2.8/Fields/MSH.18). The steps:

1. drop a UTF-8 byte-order mark and leading blank lines;
2. the message must start with ``MSH`` and its separators (field separator, then the
   encoding characters up to the next field separator);
3. read MSH-18 from the MSH line. The line is read tentatively as UTF-8, then GB 18030 —
   never by splitting raw bytes, because a GB 18030 trail byte can equal ``|``, ``^`` or ``~``
   and facility names in MSH are often Chinese;
4. decode the whole message with the declared character set. An empty MSH-18 means UTF-8,
   falling back to GB 18030 with a warning; bytes the declared set cannot read are tried as
   UTF-8 and GB 18030 with a warning; an unknown MSH-18 is an error (103 at MSH-18);
5. normalise segment terminators (CR, LF, CRLF) to CR and drop blank lines.

Failures raise :class:`~huitong.ingest.hl7v2.errors.Hl7v2Error` carrying the best header
read so far; nothing else escapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from huitong.ingest.hl7v2.charsets import codec_for_charset, is_best_effort
from huitong.ingest.hl7v2.errors import (
    Condition,
    ErrorLocation,
    Hl7v2Error,
    Hl7v2Issue,
    Severity,
)
from huitong.ingest.hl7v2.header import MessageHeader, read_header

__all__ = ["DecodedMessage", "decode_message"]

_BOM = b"\xef\xbb\xbf"
_GUESSES = ("utf-8", "gb18030")


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    """One message as text.

    ``text`` has its segments separated and ended by CR; ``codec`` is the Python codec it was
    read with (and the one its ACK must be written with); ``charset`` is MSH-18 as declared
    (empty when absent); ``warnings`` hold severity-W issues such as a character-set
    fallback.
    """

    text: str
    codec: str
    charset: str
    header: MessageHeader
    warnings: tuple[Hl7v2Issue, ...] = ()
    fallback: bool = False  # read with a codec other than the declared (or default) one

    @property
    def segments(self) -> list[str]:
        return self.text.split("\r")[:-1]


_MSH18 = ErrorLocation("MSH", 1, 18)


def _fail(
    condition: Condition, field: int, en: str, zh: str,
    header: MessageHeader | None = None, codec: str = "utf-8",
) -> Hl7v2Error:
    issue = Hl7v2Issue(condition, en, zh, ErrorLocation("MSH", 1, field) if field else
                       ErrorLocation())
    return Hl7v2Error((issue,), header or MessageHeader(), codec)


def _is_delimiter(byte: int) -> bool:
    # Printable ASCII punctuation only: letters and digits would be ambiguous with data.
    return 0x21 <= byte <= 0x7E and not chr(byte).isalnum()


def _read_separators(data: bytes) -> None:
    """Check the MSH separators, raising on anything a parser could misread: MSH-2 must
    hold four (v2.7+: five) distinct delimiters, none equal to the field separator, or
    defaults for the missing ones could collide with the given ones."""
    if not data.startswith(b"MSH"):
        if data[:3] in (b"FHS", b"BHS"):
            raise _fail(Condition.SEGMENT_SEQUENCE, 0,
                        "batches (FHS/BHS) are not accepted; send one message per frame",
                        "不接受批量消息（FHS/BHS），请每帧发送一条消息")
        raise _fail(Condition.SEGMENT_SEQUENCE, 0, "the message does not start with MSH",
                    "消息未以 MSH 段开头")
    if len(data) < 5 or not _is_delimiter(data[3]):
        raise _fail(Condition.DATA_TYPE, 1, "MSH-1 field separator is missing or invalid",
                    "MSH-1 字段分隔符缺失或无效")
    sep = data[3]
    end = data.find(bytes([sep]), 4)
    line_end = min((i for i in (data.find(b"\r"), data.find(b"\n")) if i >= 0),
                   default=len(data))
    encoding = data[4:end] if 0 <= end < line_end else data[4:line_end]
    if not 4 <= len(encoding) <= 5 or not all(_is_delimiter(b) for b in encoding) or (
        len(set(encoding)) != len(encoding) or sep in encoding
    ):
        raise _fail(Condition.DATA_TYPE, 2, "MSH-2 encoding characters are missing or invalid",
                    "MSH-2 编码字符缺失或无效")


def _tentative_text(line: bytes) -> tuple[str, str]:
    for codec in _GUESSES:
        try:
            return line.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return line.decode("latin-1"), "latin-1"


def _decode_body(
    data: bytes, header: MessageHeader, guess: str
) -> tuple[str, str, list[Hl7v2Issue]]:
    """(text, codec, warnings) for the whole message, or raise."""
    charset = header.charset
    warnings: list[Hl7v2Issue] = []
    if charset:
        declared = codec_for_charset(charset)
        if declared is None:
            raise _fail(Condition.TABLE_VALUE_NOT_FOUND, 18,
                        "MSH-18 character set is not supported",
                        "MSH-18 字符集不受支持", header, guess)
        if is_best_effort(charset):
            warnings.append(Hl7v2Issue(
                Condition.TABLE_VALUE_NOT_FOUND,
                f"MSH-18 character set read as {declared} (best effort)",
                f"MSH-18 字符集按 {declared} 尽力解码", _MSH18, Severity.WARNING))
        candidates = [declared, *(c for c in _GUESSES if c != declared)]
    else:
        candidates = list(_GUESSES)
    for i, codec in enumerate(candidates):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if i:
            expected = candidates[0]
            warnings.append(Hl7v2Issue(
                Condition.DATA_TYPE,
                f"content is not valid {expected}; read as {codec}",
                f"内容不是有效的 {expected} 编码，已按 {codec} 解码",
                _MSH18, Severity.WARNING))
        return text, codec, warnings
    raise _fail(Condition.DATA_TYPE, 18,
                "the message bytes cannot be read in the declared or any fallback character set",
                "消息字节无法按声明的字符集或任何备用字符集解码", header, guess)


def decode_message(raw: bytes) -> DecodedMessage:
    """Decode one message (an MLLP frame's payload, or a file's bytes).

    Raises :class:`Hl7v2Error`: 100 when the data does not start with MSH (or is a batch),
    102 for invalid separators or undecodable bytes, 103 for an unknown MSH-18.
    """
    data = raw[len(_BOM):] if raw.startswith(_BOM) else raw
    data = data.lstrip(b" \t\r\n")
    _read_separators(data)
    line_end = min((i for i in (data.find(b"\r"), data.find(b"\n")) if i >= 0),
                   default=len(data))
    msh_text, guess = _tentative_text(data[:line_end])
    first = read_header(msh_text)
    text, codec, warnings = _decode_body(data, first, guess)
    segments = [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
                if s.strip()]
    normalised = "\r".join(segments) + "\r"
    header = read_header(segments[0])
    fallback = codec != (codec_for_charset(header.charset) if header.charset else _GUESSES[0])
    return DecodedMessage(
        normalised, codec, header.charset, header, tuple(warnings), fallback
    )

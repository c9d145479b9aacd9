"""MLLP framing: ``<VT> payload <FS><CR>`` (0x0B … 0x1C 0x0D).

HL7 v2 Minimal Lower Layer Protocol, release 2 (HL7 v2.5.1 Implementation Guide: Transport
Specification, MLLP, https://www.hl7.org/implement/standards/product_brief.cfm?product_id=55).

:class:`MllpDecoder` is incremental and never raises on input: frames can arrive split at
any byte or several in one read. Bytes outside a frame are discarded and counted (a frame
whose start block is missing is reported as such when its end block turns up); a start
block inside an unfinished frame abandons that frame and starts the next; a frame longer
than ``max_frame_bytes`` is reported and skipped, and decoding resumes at the next start
block. An end block ``<FS>`` not followed by ``<CR>`` still ends the frame, because some
senders omit the CR and no payload byte can be ``<FS>``. None of the three control bytes
can occur inside an ASCII, UTF-8 or GB 18030 payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "CR",
    "DEFAULT_MAX_FRAME_BYTES",
    "END_BLOCK",
    "START_BLOCK",
    "FramingError",
    "FramingErrorKind",
    "MllpDecoder",
    "frame",
]

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CR = 0x0D
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024

_VT = bytes([START_BLOCK])
_FS = bytes([END_BLOCK])


def frame(payload: bytes) -> bytes:
    """``payload`` wrapped in an MLLP block. The payload must not contain VT or FS."""
    return _VT + payload + _FS + b"\r"


class FramingErrorKind(Enum):
    GARBAGE = "garbage"  # bytes between frames, discarded
    MISSING_START_BLOCK = "missing-start-block"  # an end block with no start block before it
    TRUNCATED = "truncated"  # a frame abandoned by a new start block or end of stream
    OVERSIZED = "oversized"  # a frame longer than the limit, skipped


@dataclass(frozen=True, slots=True)
class FramingError:
    """Something the decoder discarded, and how many bytes of it."""

    kind: FramingErrorKind
    size: int


class _State(Enum):
    OUTSIDE = 0
    INSIDE = 1
    SKIPPING = 2  # inside an oversized frame, waiting for the next start block


class MllpDecoder:
    """Incremental MLLP decoder for one byte stream (one connection).

    :meth:`feed_events` returns frames (``bytes``) and :class:`FramingError` events in
    stream order; :meth:`feed` returns only the frames. Counters: ``frames``,
    ``garbage_bytes`` (all discarded bytes), ``errors`` (events by kind).
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self._state = _State.OUTSIDE
        self._buffer = bytearray()
        self._garbage = 0  # discarded bytes since the last event, outside frames
        self._skipped = 0
        self._swallow_cr = False
        self.frames = 0
        self.garbage_bytes = 0
        self.errors: dict[FramingErrorKind, int] = dict.fromkeys(FramingErrorKind, 0)

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished frame held in the buffer."""
        return len(self._buffer) if self._state is _State.INSIDE else 0

    def feed(self, data: bytes) -> list[bytes]:
        """The complete frames ``data`` finishes, in order; errors are only counted."""
        return [e for e in self.feed_events(data) if isinstance(e, bytes)]

    def feed_events(self, data: bytes) -> list[bytes | FramingError]:
        """Frames and framing errors completed by ``data``, in stream order."""
        events: list[bytes | FramingError] = []
        i, n = 0, len(data)
        while i < n:
            if self._swallow_cr:
                self._swallow_cr = False
                if data[i] == CR:
                    i += 1
                    continue
            if self._state is _State.OUTSIDE:
                i = self._outside(data, i, events)
            elif self._state is _State.INSIDE:
                i = self._inside(data, i, events)
            else:
                i = self._skipping(data, i, events)
        return events

    def close(self) -> list[FramingError]:
        """End of stream: report an unfinished frame or trailing garbage, and reset."""
        events: list[bytes | FramingError] = []
        if self._state is _State.INSIDE:
            events.append(self._error(FramingErrorKind.TRUNCATED, len(self._buffer) + 1))
        elif self._state is _State.SKIPPING:
            self._skipped = 0
        self._flush_garbage(events)
        self._state = _State.OUTSIDE
        self._buffer.clear()
        return [e for e in events if isinstance(e, FramingError)]

    def _error(self, kind: FramingErrorKind, size: int) -> FramingError:
        self.errors[kind] += 1
        self.garbage_bytes += size
        return FramingError(kind, size)

    def _flush_garbage(self, events: list[bytes | FramingError]) -> None:
        if self._garbage:
            events.append(self._error(FramingErrorKind.GARBAGE, self._garbage))
            self._garbage = 0

    def _outside(self, data: bytes, i: int, events: list[bytes | FramingError]) -> int:
        vt = data.find(_VT, i)
        fs = data.find(_FS, i, vt if vt >= 0 else len(data))
        if fs >= 0:
            # Everything up to an end block that had no start block: one lost frame.
            self._garbage += fs + 1 - i
            events.append(self._error(FramingErrorKind.MISSING_START_BLOCK, self._garbage))
            self._garbage = 0
            self._swallow_cr = True
            return fs + 1
        if vt < 0:
            self._garbage += len(data) - i
            return len(data)
        self._garbage += vt - i
        self._flush_garbage(events)
        self._state = _State.INSIDE
        self._buffer.clear()
        return vt + 1

    def _inside(self, data: bytes, i: int, events: list[bytes | FramingError]) -> int:
        stop = len(data)
        fs = data.find(_FS, i)
        vt = data.find(_VT, i, fs if fs >= 0 else stop)
        end = vt if vt >= 0 else fs if fs >= 0 else stop
        self._buffer += data[i:end]
        if len(self._buffer) > self.max_frame_bytes:
            self._skipped = len(self._buffer) + 1
            self._buffer.clear()
            self._state = _State.SKIPPING
            return end
        if vt >= 0:
            events.append(self._error(FramingErrorKind.TRUNCATED, len(self._buffer) + 1))
            self._buffer.clear()
            return vt + 1  # the new start block opens the next frame
        if fs >= 0:
            events.append(bytes(self._buffer))
            self.frames += 1
            self._buffer.clear()
            self._state = _State.OUTSIDE
            self._swallow_cr = True
            return fs + 1
        return stop

    def _skipping(self, data: bytes, i: int, events: list[bytes | FramingError]) -> int:
        vt = data.find(_VT, i)
        fs = data.find(_FS, i, vt if vt >= 0 else len(data))
        end = fs + 1 if fs >= 0 else vt if vt >= 0 else len(data)
        self._skipped += end - i
        if fs < 0 and vt < 0:
            return end
        events.append(self._error(FramingErrorKind.OVERSIZED, self._skipped))
        self._skipped = 0
        self._state = _State.OUTSIDE
        self._swallow_cr = fs >= 0
        return end

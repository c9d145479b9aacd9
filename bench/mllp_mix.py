"""An ADT/ORU mix from ``../shared/data/hl7v2-samples`` with fresh control and patient ids.

Shared by the MLLP benchmarks (``mllp_e2e.py``, ``mllp_profile.py``): every message gets a
new MSH-10 (so no message is a resend of another), a new first PID-3 id (so every Patient is
a new person for the identity service), a new visit number (PV1-19) and new placer/filler
order numbers (ORC-2/3, OBR-2/3) and the diagnosis, procedure, policy and specimen ids
(DG1-20, PR1-19, IN1-36, SPM-2), so each message is a new event as in a real feed — with
the samples' visit and order numbers kept, every repetition would move the same Encounter,
Observations and Conditions to another patient, a pattern no real sender produces — and
MSH-3/MSH-4 become ``BENCH`` so one channel (:data:`CHANNEL`) takes them all.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "hl7v2-samples"
# Message types the engine maps (others are answered AR, which is not the cost we measure).
MAPPED = re.compile(r"^(ADT-A0[1-8]|ADT-A1[13]|ADT-A28|ADT-A31|ORU|LAB-ORU)")
CHANNEL = {
    "id": "bench", "organization": "Organization/bench", "transport": "mllp",
    "format": "hl7v2", "sending_facility": "BENCH",
}


def load_templates() -> list[bytes]:
    files = sorted(f for f in SAMPLES.glob("*.hl7") if MAPPED.match(f.name))
    if not files:
        sys.exit(f"HL7 v2 samples not found at {SAMPLES}")
    return [f.read_bytes() for f in files]


# The fields that name an event (a visit, an order), made fresh per message.
_EVENT_IDS = {
    "PV1": (19,), "ORC": (2, 3), "OBR": (2, 3), "DG1": (20,), "PR1": (19,), "IN1": (36,),
    "SPM": (2,),
}


def _letters(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 26)
        out += "abcdefghijklmnopqrstuvwxyz"[r]
        if not n:
            return out


def _rewrite(template: bytes, n: int, run: str) -> bytes:
    text = template.removeprefix(b"\xef\xbb\xbf").decode("latin-1").lstrip()
    segments = re.split(r"\r\n|\r|\n", text)
    out = []
    for seg in segments:
        if not seg:
            continue
        if seg.startswith("MSH"):
            f = seg.split("|")
            f[2], f[3] = "BENCH", "BENCH"
            f[9] = f"{run}-{n}"
            seg = "|".join(f)
        elif seg.startswith("PID"):
            # A new person: new MRN (other identifiers dropped), name, phones and SSN, so
            # the identity service finds nobody to link them to (as for real new patients).
            f = seg.split("|")
            f += [""] * (20 - len(f))
            comps = (f[3].split("~")[0] or "x^^^BENCH^MR").split("^")
            comps[0] = f"{run}P{n}"
            f[2], f[3], f[4] = "", "^".join(comps), ""
            name = f[5].split("~")[0].split("^")
            name[0] = f"{name[0]}{_letters(n)}"
            f[5] = "^".join(name)
            f[13] = f"^PRN^PH^^^555^{n % 10_000_000:07d}"
            f[14], f[19] = "", ""
            seg = "|".join(f).rstrip("|")
        elif seg[:3] in _EVENT_IDS:
            f = seg.split("|")
            for i in _EVENT_IDS[seg[:3]]:
                if i < len(f) and f[i]:
                    comps = f[i].split("^")
                    comps[0] = f"{comps[0]}-{run}{n}"
                    f[i] = "^".join(comps)
            seg = "|".join(f)
        out.append(seg)
    return ("\r".join(out) + "\r").encode("latin-1")


def messages(run: str, templates: list[bytes] | None = None) -> Iterator[bytes]:
    """An endless stream of fresh messages (``run`` keeps ids unique across runs)."""
    templates = templates or load_templates()
    for n in itertools.count():
        yield _rewrite(templates[n % len(templates)], n, run)


def warm_intake(url: str, measured: int) -> tuple[Any, list[bytes]]:
    """The real app's ingest service on the migrated database ``url`` (identity and quality
    on, as in production; authentication off), the mix's channel created, 30 messages
    already sent to warm its caches (terminology, channels, prepared statements), and the
    next ``measured`` messages of the same stream, for the caller to time."""
    import uuid

    from huitong.config import Settings
    from huitong.ingest.channels import channel_from_config
    from huitong.server.app import create_app
    from huitong.store import open_repository

    repo = open_repository(url)
    repo.upgrade()
    app = create_app(repo, Settings.from_env({}, database_url=url, auth="off"))
    ingest = app.state.ingest
    ingest.put_channel(channel_from_config(CHANNEL))
    stream = messages(uuid.uuid4().hex[:6])
    for _ in range(30):
        ingest.receive_hl7v2(next(stream))
    return ingest, [next(stream) for _ in range(measured)]

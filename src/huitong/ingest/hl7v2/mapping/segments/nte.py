"""NTE → FHIR ``Annotation`` (https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-nte-to-annotation.html).

NTE-3 (FT, repeating) is the comment; repetitions are lines. FT's formatting escapes
(``\\.br\\``) have already become line breaks when the message was read.
"""

from __future__ import annotations

from typing import Any

from huitong.ingest.hl7v2.mapping.message import Segment

__all__ = ["nte_annotations"]


def nte_annotations(ntes: list[Segment]) -> list[dict[str, Any]]:
    out = []
    for nte in ntes:
        text = "\n".join(v.text for v in nte.reps(3)).strip()
        if text:
            out.append({"text": text})
    return out

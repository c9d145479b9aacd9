"""TXA (+ the document's OBX) → ``DocumentReference``
(https://build.fhir.org/ig/HL7/v2-to-fhir/ConceptMap-segment-txa-to-documentreference.html).

TXA-12 unique document number → masterIdentifier and identifier (the document's identity),
TXA-2 document type → type, TXA-3 content presentation → attachment content type, TXA-4
activity date (else TXA-6 origination) → date, TXA-9 originator → author, TXA-13 parent
document → relatesTo (``appends`` for addenda T05/T06, ``replaces`` for T09/T10), TXA-17
completion status (table 0271) → docStatus. The OBX text lines become the attachment's
``data`` (UTF-8, base64); an OBX of type ED carries its own base64 data and media type.
Notifications without content (T01, T05, T09) still record the document, with an
attachment that has no data.
"""

from __future__ import annotations

import base64
from typing import Any

from huitong.ingest.hl7v2.mapping.datatypes import (
    cwe_codeable_concept,
    dtm_datetime,
    dtm_instant,
    ei_identifier,
    xcn_reference,
)
from huitong.ingest.hl7v2.mapping.message import Segment
from huitong.ingest.hl7v2.mapping.state import MapState

__all__ = ["map_document"]

_DOC_STATUS = {"AU": "final", "LA": "final", "DI": "preliminary", "DO": "preliminary",
               "IN": "preliminary", "IP": "preliminary", "PA": "preliminary"}
_CONTENT_TYPE = {"TX": "text/plain", "FT": "text/plain", "HTML": "text/html",
                 "PDF": "application/pdf", "XML": "application/xml", "RTF": "application/rtf"}


def _attachment(obxs: list[Segment], txa: Segment, created: str | None) -> dict[str, Any]:
    content_type = _CONTENT_TYPE.get(txa.get(3).upper(), "text/plain")
    attachment: dict[str, Any] = {"contentType": f"{content_type}; charset=utf-8"
                                  if content_type.startswith("text/") else content_type}
    ed = next((o for o in obxs if o.get(2).upper() == "ED"), None)
    if ed is not None:
        value = ed.value(5)
        data = value[5].replace(" ", "")
        mime = f"{value[2]}/{value[3]}".lower() if value[2] and value[3] else ""
        try:
            base64.b64decode(data, validate=True)
        except ValueError:
            data = ""
        if data and value[4].upper() in ("BASE64", "A", ""):
            attachment = {"contentType": mime or "application/octet-stream", "data": data}
    else:
        lines = ["\n".join(v.text for v in o.reps(5)) for o in obxs]
        text = "\n".join(lines)
        if text:
            attachment["data"] = base64.b64encode(text.encode("utf-8")).decode("ascii")
    title = txa.value(2)[2] or txa.get(16)
    if title:
        attachment["title"] = title
    if created:
        attachment["creation"] = created
    return attachment


def map_document(state: MapState, txa: Segment, obxs: list[Segment], event: str) -> str:
    offset = state.ctx.default_utc_offset
    ident = ei_identifier(state, txa.value(12), "document")
    if ident is None:
        key = state.derived_identifier("document", txa.get(2), txa.get(4) or txa.get(6),
                                       state.msg.control_id)
        ident = {"system": key[0], "value": key[1]}
        state.warn("derived-id", txa.loc(12), "TXA-12 (unique document number) is empty",
                   "TXA-12（文档唯一编号）为空")
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": ident,
        "identifier": [ident],
        "status": "current",
    }
    doc_status = _DOC_STATUS.get(txa.get(17).upper())
    if doc_status:
        doc["docStatus"] = doc_status
    doc_type = cwe_codeable_concept(state, txa.value(2),
                                    "http://terminology.hl7.org/CodeSystem/v2-0270")
    if doc_type:
        doc["type"] = doc_type
    doc["subject"] = state.subject()
    when = txa.get(4) or txa.get(6)
    date = dtm_instant(when, offset) if when else None
    if date:
        doc["date"] = date
    authors = [r for r in (xcn_reference(state, v, doc) for v in txa.reps(9)) if r]
    if authors:
        doc["author"] = authors
    authenticator = next((r for r in (xcn_reference(state, v, doc) for v in txa.reps(10))
                          if r), None)
    if authenticator:
        doc["authenticator"] = authenticator
    parent = ei_identifier(state, txa.value(13), "document")
    relation = {"T05": "appends", "T06": "appends", "T09": "replaces", "T10": "replaces",
                "T03": "appends", "T04": "appends"}.get(event)
    if parent and relation:
        doc["relatesTo"] = [{"code": relation, "target": {"identifier": parent}}]
    created = dtm_datetime(when, offset) if when else None
    doc["content"] = [{"attachment": _attachment(obxs, txa, created)}]
    if state.encounter:
        doc["context"] = {"encounter": [{"reference": state.encounter}]}
    return state.builder.put(doc, (ident["system"], ident["value"]))

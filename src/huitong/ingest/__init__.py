"""Gather (聚): channels and adapters that take every source in and never lose a message.

Subpackages: ``hl7v2`` (parsing, acknowledgements, v2-to-FHIR mapping), ``mllp`` (framing and
the asyncio listener), ``feeds`` (CSV/JSON mappings), ``devices`` (home-device readings over
REST and MQTT), ``dicom`` (ImagingStudy from DICOM metadata).
"""

__all__: list[str] = []

"""HL7 v2 → FHIR R4 mapping, following the HL7 v2-to-FHIR implementation guide
(https://build.fhir.org/ig/HL7/v2-to-fhir/): message maps in ``messages/``, segment maps in
``segments/``, datatype maps in ``datatypes/``.

``map_message(message, ctx)`` is pure: it returns a :class:`MappingResult` whose ``bundle``
is an idempotent FHIR ``transaction`` for the repository's one write path.

What is mapped (:data:`SUPPORTED_EVENTS` is the exact list):

=====================  =================================================================
ADT A01–A16 A25–A28    Patient (+ contacts), Encounter (status per event), Location,
A31 A38 A60            Practitioner, AllergyIntolerance (AL1, IAM), Condition (DG1),
                       Procedure (PR1), Coverage (IN1), Observation (OBX)
ADT A34 A35 A36 A39    a :class:`MergeRequest` for the identity service; the Bundle only
A40                    makes sure the surviving patient exists
ORU R01, OUL R22–R24   DiagnosticReport, Observation, Specimen, ServiceRequest
ORM O01, OML O21,      ServiceRequest (+ Specimen, supporting Observations, reasons)
OMG O19
VXU V04                Immunization (+ Observations ``partOf`` it)
RDE O11 O25, RDS O13   MedicationRequest, MedicationDispense
MDM T01–T11            DocumentReference (OBX text as base64 attachment data)
SIU S12–S17 S26        Appointment
PPR PC1–PC3            Condition (problem-list item)
REF I12 I14            ServiceRequest (referral)
=====================  =================================================================

Anything else raises :class:`UnsupportedMessage` (the sender gets AR); content that cannot
be mapped raises :class:`MappingError` (AE with an ERR segment).
"""

from huitong.ingest.hl7v2.mapping.dispatch import SUPPORTED_EVENTS, map_message
from huitong.ingest.hl7v2.mapping.errors import MappingError, UnsupportedMessage
from huitong.ingest.hl7v2.mapping.model import (
    MappingContext,
    MappingResult,
    MappingWarning,
    MergeRequest,
)

__all__ = [
    "SUPPORTED_EVENTS",
    "MappingContext",
    "MappingError",
    "MappingResult",
    "MappingWarning",
    "MergeRequest",
    "UnsupportedMessage",
    "map_message",
]

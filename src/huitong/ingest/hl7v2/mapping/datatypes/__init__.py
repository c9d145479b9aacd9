"""HL7 v2 data types → FHIR R4 data types, following the v2-to-FHIR IG datatype maps
(https://build.fhir.org/ig/HL7/v2-to-fhir/datatype_maps.html)."""

from huitong.ingest.hl7v2.mapping.datatypes.addresses import xad_address
from huitong.ingest.hl7v2.mapping.datatypes.coding import (
    coding_system,
    cwe_codeable_concept,
    cwe_coding,
    table_concept,
)
from huitong.ingest.hl7v2.mapping.datatypes.dates import dtm_date, dtm_datetime, dtm_instant
from huitong.ingest.hl7v2.mapping.datatypes.identifiers import (
    RESIDENT_ID_SYSTEM,
    cx_identifier,
    ei_identifier,
    hd_system,
)
from huitong.ingest.hl7v2.mapping.datatypes.locations import pl_location
from huitong.ingest.hl7v2.mapping.datatypes.names import xpn_name
from huitong.ingest.hl7v2.mapping.datatypes.people import xcn_reference
from huitong.ingest.hl7v2.mapping.datatypes.quantities import cq_quantity, nm_number, ucum_unit
from huitong.ingest.hl7v2.mapping.datatypes.telecom import xtn_contact_point

__all__ = [
    "RESIDENT_ID_SYSTEM",
    "coding_system",
    "cq_quantity",
    "cwe_codeable_concept",
    "cwe_coding",
    "cx_identifier",
    "dtm_date",
    "dtm_datetime",
    "dtm_instant",
    "ei_identifier",
    "hd_system",
    "nm_number",
    "pl_location",
    "table_concept",
    "ucum_unit",
    "xad_address",
    "xcn_reference",
    "xpn_name",
    "xtn_contact_point",
]

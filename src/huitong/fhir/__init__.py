"""FHIR R4 knowledge with no I/O: definitions, validation, search parameters, indexing."""

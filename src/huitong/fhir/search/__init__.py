"""FHIR search, as data: the parameter registry and the parsed query model."""

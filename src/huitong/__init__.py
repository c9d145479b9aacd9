"""Huitong (汇通): a regional health information exchange built on FHIR R4."""

__all__ = ["__version__"]

__version__ = "0.1.0"

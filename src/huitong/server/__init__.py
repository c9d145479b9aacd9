"""The HTTP face of Huitong: the FHIR R4 REST API (JSON) — https://hl7.org/fhir/R4/http.html.

Public surface: :func:`create_app`. Everything else is internal to the package; the routing
table (:mod:`huitong.server.routing`) is the one list of what the API does.
"""

from huitong.server.app import create_app

__all__ = ["create_app"]

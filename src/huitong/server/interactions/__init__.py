"""One module per FHIR RESTful interaction — https://hl7.org/fhir/R4/http.html.

Each handler takes ``(ctx, req)`` and returns a :class:`~huitong.server.response.FhirResponse`;
each write also exposes an ``*_in(tx, ...)`` function that does the work inside a caller's
transaction, which is how a ``transaction`` Bundle runs the same logic for its entries.
"""

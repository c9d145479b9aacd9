"""The human face of Huitong: server-rendered pages for clinicians, patients and operators.

Public surface: :func:`web_routes` (the routes to mount under ``/app``) and
:class:`WebServices` (what the pages call). Pages use the same services as the API and never
the database directly; text is in Simplified Chinese and English (``messages.toml``).
"""

from huitong.web.routes import web_routes
from huitong.web.services import WebServices

__all__ = ["WebServices", "web_routes"]

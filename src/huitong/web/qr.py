"""QR images drawn by the server as SVG (``segno``: pure Python, no script, no image files).

The SVG is written inline into the page, so it needs neither a data: URL nor a second request,
and works under the pages' Content-Security-Policy (presentation attributes, no ``style``).
"""

from __future__ import annotations

import io

import segno
from markupsafe import Markup

__all__ = ["qr_svg"]


def qr_svg(payload: str, title: str, *, scale: int = 6) -> Markup:
    """``payload`` as an inline SVG QR code (error correction M, 4-module quiet zone so phone
    cameras find it); ``title`` is the image's accessible name (escaped here)."""
    code = segno.make(payload, error="m", micro=False)
    out = io.BytesIO()
    code.save(
        out, kind="svg", xmldecl=False, svgns=True, scale=scale, border=4,
        title=title, svgclass="qr", lineclass=None, dark="#000", light="#fff",
    )  # fmt: skip
    svg = out.getvalue().decode("utf-8")
    # segno escapes the title itself; say what the image is to screen readers
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))

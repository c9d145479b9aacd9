"""Segment maps (one module per segment or segment family)."""

__all__: list[str] = []

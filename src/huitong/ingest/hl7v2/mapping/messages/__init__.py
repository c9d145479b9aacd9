"""Message maps (one module per message structure family)."""

__all__: list[str] = []

"""tasu: Text-only Alignment for Speech Understanding (TASU) recipe toolkit."""

__version__ = "0.1.0"

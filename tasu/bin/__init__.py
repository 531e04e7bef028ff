"""Command-line entry points: ``python -m tasu.bin.<name> --help``."""

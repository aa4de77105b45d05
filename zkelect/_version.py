"""The package version, kept in one place (read by pyproject and the CLI)."""

__version__ = "0.1.0"

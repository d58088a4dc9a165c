"""The package version (here, not in __init__.py, so low-level modules can record it without
importing the package's public API)."""

__version__ = "0.1.0"

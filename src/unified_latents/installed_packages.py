"""Files shipped inside installed Python packages (weights, small datasets, model folders), found
without importing the package: importing some is slow (scikit-learn, mlxtend), others would pull
in dependencies the project does not have (sentence-transformers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_directories(package: str) -> list[Path]:
    """The directories of the installed `package` (empty when it is not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        return []
    return [Path(location) for location in spec.submodule_search_locations or []]


def package_file(package: str, relative: str) -> Path | None:
    """The file `relative` inside the installed `package`, or None when either is missing."""
    for directory in package_directories(package):
        candidate = directory / relative
        if candidate.is_file():
            return candidate
    return None

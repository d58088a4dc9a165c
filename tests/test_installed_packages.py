"""installed_packages.py: files inside installed packages, found without importing them."""

from __future__ import annotations

import unified_latents
from unified_latents.installed_packages import package_directories, package_file


def test_finds_a_file_of_an_installed_package_and_none_for_missing_ones() -> None:
    found = package_file("unified_latents", "py.typed")
    assert found is not None and found.parent in package_directories("unified_latents")
    assert found.parent.samefile(unified_latents.__path__[0])
    assert package_file("unified_latents", "no-such-file.bin") is None
    assert package_file("no_such_package_for_this_test", "x") is None
    assert package_directories("no_such_package_for_this_test") == []

"""`git_revision`: the revision of the checkout that holds a directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from unified_latents.training.state import git_revision


def test_git_revision_of_a_directory(tmp_path: Path) -> None:
    here = Path(__file__).resolve().parent
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True
    ).stdout.strip()
    assert git_revision(here) == (head or "unknown")
    assert git_revision(tmp_path) == "unknown"  # not inside a checkout

"""Where the benchmark scripts run from and what they record of it: the checkout (their results
are written below it), and the date, git revision and torch version behind a result."""

from __future__ import annotations

import datetime
from pathlib import Path

import torch

from unified_latents.training.state import git_revision

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_stamp() -> dict[str, str]:
    """When and from what a result was made: the UTC date, this checkout's git revision (or
    "unknown" outside one) and the torch version."""
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": git_revision(REPO_ROOT),
        "torch_version": torch.__version__,
    }

"""`python -m unified_latents ...` is the `ul` command (useful from a checkout or worktree)."""

import sys

from unified_latents.cli import main

sys.exit(main())

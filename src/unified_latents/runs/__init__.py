"""Run kinds: one module per kind of run, and what ties them to the shared loop and the commands."""

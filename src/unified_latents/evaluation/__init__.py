"""What `ul evaluate` measures, shared by the run kinds (docs/architecture.md)."""

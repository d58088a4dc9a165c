"""GPU check: `python -m unified_latents.gpu_check` (see __main__.py, docs/distributed.md)."""

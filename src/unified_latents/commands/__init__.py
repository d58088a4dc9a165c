"""What each `ul` subcommand does, with typed arguments (argument parsing lives in cli.py)."""

from unified_latents.conditions import ConditionError
from unified_latents.config import ConfigError
from unified_latents.data.datasets import DataError
from unified_latents.data.latent_cache import LatentCacheError
from unified_latents.evaluation.fid import EvaluationError
from unified_latents.runs.directory import RunError
from unified_latents.runs.training import INTERRUPTED_EXIT_CODE as INTERRUPTED_EXIT_CODE
from unified_latents.runs.training import Interrupted as Interrupted
from unified_latents.training.checkpoint import CheckpointError
from unified_latents.training.loop import NonFiniteLossError
from unified_latents.training.wrapping import CompileError

# Errors a user can act on: printed as one clear line, never as a traceback.
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    RunError,
    DataError,
    CheckpointError,
    NonFiniteLossError,
    CompileError,
    LatentCacheError,
    ConditionError,
    EvaluationError,
)

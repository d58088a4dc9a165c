"""What each `ul` subcommand does, with typed arguments (argument parsing lives in cli.py)."""

from unified_latents.config import ConfigError
from unified_latents.data.datasets import DataError
from unified_latents.data.latent_cache import LatentCacheError
from unified_latents.runs import RunError
from unified_latents.stages.conditions import ConditionError
from unified_latents.stages.evaluation import EvaluationError
from unified_latents.training.checkpoint import CheckpointError
from unified_latents.training.loop import CompileError, NonFiniteLossError


class Interrupted(Exception):
    """A training run stopped by SIGTERM/Ctrl-C after writing its checkpoint. Raised by the
    training commands so that commands built on them (`ul sweep`, `ul demo`) stop too instead of
    going on to their next step; `ul` then exits with `INTERRUPTED_EXIT_CODE`."""


# The exit status of a command stopped by SIGTERM/Ctrl-C after saving its work: 75 is sysexits.h's
# EX_TEMPFAIL ("temporary failure; retry later"), i.e. re-run the same command to resume. It
# differs from 0 (finished), 1 (crash) and 2 (a user error), so job schedulers and scripts can tell
# an interrupted run from a finished one.
INTERRUPTED_EXIT_CODE = 75


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

"""Typed errors raised by the library; the CLI maps each to a message and an exit code.

Every error message says *where* (file, key, column, row) and *how to fix it*: the CLI prints
it as it is, without a traceback.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, the same for every command (documented in the README)."""

    OK = 0
    INVALID_INPUT = 2  # bad recipe, bad arguments, a model or file that cannot be used
    DATA_ERROR = 3  # data that does not satisfy the contract of its loss or evaluator
    RUNTIME_FAILURE = 4  # training failed while running (non-finite loss, out of memory, ...)
    BELOW_THRESHOLD = 5  # `embedtrain eval --fail-under`: a metric is below its threshold


class EmbedtrainError(Exception):
    """Base class for errors a user can act on."""

    exit_code: ExitCode = ExitCode.RUNTIME_FAILURE


class RecipeError(EmbedtrainError):
    """The recipe (or a command-line override) is invalid."""

    exit_code = ExitCode.INVALID_INPUT


class LaunchConfigError(EmbedtrainError):
    """An accelerate launch config (`train --launch`) is invalid, or this machine cannot run it."""

    exit_code = ExitCode.INVALID_INPUT


class ModelLoadError(EmbedtrainError):
    """A model directory or hub id cannot be read as a model."""

    exit_code = ExitCode.INVALID_INPUT


class DataError(EmbedtrainError):
    """A dataset cannot be loaded or does not match what its loss or evaluator needs.

    `problems`: each problem on its own (the message may list several), for a caller that gathers the problems of
    several sources into one report."""

    exit_code = ExitCode.DATA_ERROR

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class TrainingError(EmbedtrainError):
    """Training failed at run time."""

    exit_code = ExitCode.RUNTIME_FAILURE


class IncompatibleDependencyError(EmbedtrainError):
    """An installed package (e.g. transformers) lacks something embedtrain relies on: a version outside the tested
    range."""

    exit_code = ExitCode.RUNTIME_FAILURE


def did_you_mean(name: str, options: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest option to a misspelt `name` (case-insensitive), or ''."""
    import difflib

    by_lower = {str(option).lower(): str(option) for option in options}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""

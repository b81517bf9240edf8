"""The error boundary every command runs in, and the command line's logging: an error becomes a message and its exit
code (a traceback only with --verbose), never a raw traceback."""

import logging
import os
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.logging import RichHandler
from rich.markup import escape

from embedtrain.console import console
from embedtrain.errors import EmbedtrainError, ExitCode


@dataclass
class CliOptions:
    verbose: bool = False  # --verbose: tracebacks are printed too


options = CliOptions()  # set by the app's callback before any command runs


class user_errors:
    """The error boundary of every command: each error becomes a message and its exit code, without a traceback
    (printed only with --verbose). An error embedtrain does not expect is a bug: exit 4 with a one-line summary
    and the file its full traceback was written to (`error.log` in `run_dir` once the run directory is known)."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None

    def __enter__(self) -> "user_errors":
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if error is None or isinstance(error, (typer.Exit, SystemExit)):
            return False
        if not isinstance(error, (Exception, KeyboardInterrupt)):
            return False  # GeneratorExit and the like are the interpreter's, not failures to report
        if options.verbose:
            typer.echo("".join(traceback.format_exception(error)), err=True)
        if isinstance(error, EmbedtrainError):
            fail(str(error), error.exit_code)
        if isinstance(error, KeyboardInterrupt):
            fail("interrupted; continue later with --resume (from the latest checkpoint)", ExitCode.RUNTIME_FAILURE)
        if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
            fail(f"out of memory ({type(error).__name__}); lower training.batch_size or model.max_seq_length",
                  ExitCode.RUNTIME_FAILURE)
        fail(_unexpected_error_message(error, _write_traceback(error, self.run_dir)), ExitCode.RUNTIME_FAILURE)
        return False


def _unexpected_error_message(error: BaseException, log: Path | None) -> str:
    lines = str(error).strip().splitlines()
    summary = f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__
    where = f"the full traceback is in {log}" if log else "rerun with --verbose for the full traceback"
    return f"unexpected error ({summary}); {where}. This is a bug in embedtrain: please report it with that traceback"


def _write_traceback(error: BaseException, run_dir: Path | None) -> Path | None:
    """Write the traceback into the run directory when it exists, else into a file in the system temp dir."""
    text = "".join(traceback.format_exception(error))
    rank = os.environ.get("RANK", "0")  # set by `accelerate launch`: one file per process
    name = "error.log" if rank in ("", "0") else f"error-rank{rank}.log"
    if run_dir is not None and run_dir.is_dir():
        try:
            (run_dir / name).write_text(text, encoding="utf-8")
            return run_dir / name
        except OSError:
            pass  # e.g. a read-only run directory: the temp dir below
    try:
        handle, path = tempfile.mkstemp(prefix="embedtrain-error-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        return Path(path)
    except OSError:
        return None


def fail(message: str, code: ExitCode) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)  # paths stay copyable
    raise typer.Exit(int(code))


def configure_logging(verbose: bool) -> None:
    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    logging.getLogger("embedtrain").setLevel(logging.DEBUG if verbose else logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

"""The `embedtrain` command line. Thin: parse arguments, call the library, map errors to exit codes."""

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.logging import RichHandler
from rich.markup import escape

from embedtrain import __version__
from embedtrain.console import console
from embedtrain.errors import EmbedtrainError, ExitCode

app = typer.Typer(
    name="embedtrain",
    help="Train and fine-tune text embedding models from a YAML recipe.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

TRAIN_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain train recipes/quickstart.yaml

  embedtrain train recipes/stsb.yaml --set training.learning_rate=3e-5 --set model.base=./my-model

  embedtrain train recipes/stsb.yaml --output-dir runs/stsb-2 --resume

  accelerate launch --num_processes 2 -m embedtrain train recipes/stsb.yaml
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"embedtrain {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logs of embedtrain.")] = False,
) -> None:
    _configure_logging(verbose)


@app.command(epilog=TRAIN_EXAMPLES)
def train(
    recipe: Annotated[Path, typer.Argument(help="The YAML recipe.", show_default=False)],
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                 help="Override a recipe field, e.g. training.epochs=2 (repeatable).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in the output directory.")] = False,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", help="Override training.output_dir.")] = None,
) -> None:
    """Train a model from a recipe: validate it and its data, train, evaluate, save to OUTPUT_DIR/final."""
    from embedtrain.console import RichObserver
    from embedtrain.engine.run import run_training
    from embedtrain.recipe.loading import load_recipe

    overrides = list(overrides or [])
    if output_dir is not None:
        overrides.append(f"training.output_dir={output_dir}")
    with _user_errors():
        loaded = load_recipe(recipe, overrides)
        run_training(loaded, resume=resume, observer=RichObserver())


list_app = typer.Typer(help="List what recipes can use.", no_args_is_help=True)
app.add_typer(list_app, name="list")


@list_app.command("losses")
def list_losses(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Every loss a recipe can name in `losses:` (its `type`), with its inputs, label and parameter defaults."""
    from embedtrain.commands.list_losses import loss_catalogue, loss_table

    if as_json:
        import json

        typer.echo(json.dumps(loss_catalogue(), indent=2))
    else:
        console.print(loss_table(loss_catalogue()))


class _user_errors:
    """Turn library errors into a message and an exit code, without a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or isinstance(error, (typer.Exit, SystemExit)):
            return False
        if isinstance(error, EmbedtrainError):
            _fail(str(error), error.exit_code)
        if isinstance(error, KeyboardInterrupt):
            _fail("interrupted; continue later with --resume (from the latest checkpoint)", ExitCode.RUNTIME_FAILURE)
        if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
            _fail(f"out of memory ({type(error).__name__}); lower training.batch_size or model.max_seq_length",
                  ExitCode.RUNTIME_FAILURE)
        return False


def _fail(message: str, code: ExitCode) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)  # paths stay copyable
    raise typer.Exit(int(code))


def _configure_logging(verbose: bool) -> None:
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


def main() -> None:
    app()

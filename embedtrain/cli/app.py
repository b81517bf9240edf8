"""The typer app: the top-level options, and the help shared by several commands. The commands register themselves
on `app` in the modules embedtrain.cli imports."""

from typing import Annotated

import typer

from embedtrain import __version__
from embedtrain.cli.boundary import configure_logging, options

app = typer.Typer(
    name="embedtrain",
    help="Train and fine-tune text embedding models from a YAML recipe.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

COLUMNS_HELP = ("Map inputs to data columns, e.g. anchor=q,positive=a; a repeated input several times "
                "(negative=n1,negative=n2), the label as label=COLUMN.")


def _version(value: bool) -> None:
    if value:
        from embedtrain.commands.version import version_text

        typer.echo(version_text(__version__))
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the versions of embedtrain, python and its main "
                                                         "dependencies (for bug reports), and exit.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show debug logs of embedtrain, and the traceback of an error.")] = False,
) -> None:
    options.verbose = verbose
    configure_logging(verbose)


def main() -> None:
    app()

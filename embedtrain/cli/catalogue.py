"""What recipes can use and where they start: list (losses, modules), recipes (ls, show, cp) and schema."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.markup import escape

from embedtrain.cli.app import app
from embedtrain.cli.boundary import user_errors
from embedtrain.console import console

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def show(as_json: bool, data, table: Callable[[], RenderableType]) -> None:
    """A catalogue as JSON on stdout (`--json`, for scripts), or as the table `table()` builds."""
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        console.print(table())


LIST_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain list losses

  embedtrain list modules recipes/splade-nq.yaml
"""

list_app = typer.Typer(help="List what recipes can use.", no_args_is_help=True, epilog=LIST_EXAMPLES)
app.add_typer(list_app, name="list")

LIST_LOSSES_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain list losses

  embedtrain list losses --json > losses.json
"""


@list_app.command("losses", epilog=LIST_LOSSES_EXAMPLES)
def list_losses(as_json: JsonOption = False) -> None:
    """Every loss a recipe can name in `losses:` (its `type`), with its inputs, label and parameter defaults."""
    from embedtrain.commands.list_losses import loss_catalogue, loss_table

    losses = loss_catalogue()
    show(as_json, losses, lambda: loss_table(losses))


LIST_MODULES_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain list modules recipes/splade-nq.yaml

  embedtrain list modules recipes/stsb.yaml --set model.base=./my-model

  embedtrain list modules runs/stsb/final --json
"""


@list_app.command("modules", epilog=LIST_MODULES_EXAMPLES)
def list_modules(
    recipe_or_model: Annotated[str, typer.Argument(help="A recipe (.yaml) or a saved model folder.", show_default=False)],
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a recipe field.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every parameter of the model with the two names training.learning_rate_mapping patterns are matched against:
    its path (e.g. 0.sub_modules.query.0.weight) and its typed name (e.g. SparseStaticEmbedding.weight)."""
    from embedtrain.commands.list_modules import load_for_listing, module_catalogue, module_table

    with user_errors():
        catalogue = module_catalogue(load_for_listing(recipe_or_model, list(overrides or [])))
    show(as_json, catalogue, lambda: module_table(catalogue))


RECIPES_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes ls

  embedtrain recipes cp stsb
"""

recipes_app = typer.Typer(help="The recipe catalogue that ships with embedtrain: list, print or copy a recipe.",
                          no_args_is_help=True, epilog=RECIPES_EXAMPLES)
app.add_typer(recipes_app, name="recipes")

RECIPES_LS_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes ls

  embedtrain recipes ls --json > recipes.json
"""


@recipes_app.command("ls", epilog=RECIPES_LS_EXAMPLES)
def recipes_ls(as_json: JsonOption = False) -> None:
    """Every recipe of the catalogue: model kind, losses, training data, purpose and expected time."""
    from embedtrain.commands.recipes import catalogue, recipe_table

    with user_errors():
        recipes = catalogue()
    show(as_json, [recipe.as_json() for recipe in recipes], lambda: recipe_table(recipes))


RECIPES_SHOW_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes show stsb

  embedtrain recipes show splade-nq > splade-nq.yaml
"""


@recipes_app.command("show", epilog=RECIPES_SHOW_EXAMPLES)
def recipes_show(name: Annotated[str, typer.Argument(help="The recipe's name (see `embedtrain recipes ls`).",
                                                      show_default=False)]) -> None:
    """Print a recipe of the catalogue as it is."""
    from embedtrain.commands.recipes import read_recipe

    with user_errors():
        recipe = read_recipe(name)
    typer.echo(recipe.text, nl=False)


RECIPES_CP_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes cp stsb

  embedtrain recipes cp quickstart my-recipes/

  embedtrain recipes cp nli-mnrl nli.yaml --force
"""


@recipes_app.command("cp", epilog=RECIPES_CP_EXAMPLES)
def recipes_cp(
    name: Annotated[str, typer.Argument(help="The recipe's name (see `embedtrain recipes ls`).", show_default=False)],
    destination: Annotated[str | None, typer.Argument(help="A file, or a folder to copy NAME.yaml into (an existing "
                                                           "one, or a path ending with /); default: ./NAME.yaml.",
                                                      show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Copy a recipe to edit and train it. The copy starts with a yaml-language-server comment naming
    recipe.schema.json beside it (write that with `embedtrain schema --output`); data that ships with the recipe
    is copied to NAME-data/ beside it."""
    from embedtrain.commands.recipes import SCHEMA_FILE, copy_recipe

    with user_errors():
        copied = copy_recipe(name, destination, force=force)
    console.print(f"wrote {escape(str(copied.recipe))}", soft_wrap=True)
    for path in copied.data:
        console.print(f"wrote {escape(str(path))}", soft_wrap=True)
    schema = copied.recipe.parent / SCHEMA_FILE
    if not schema.exists():
        console.print(f"for completion and checks in editors: embedtrain schema --output {escape(str(schema))}",
                      soft_wrap=True)


SCHEMA_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain schema > recipe.schema.json

  embedtrain schema --output recipe.schema.json --force
"""


@app.command(epilog=SCHEMA_EXAMPLES)
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the schema to this file instead of "
                                                                       "stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output file.")] = False,
) -> None:
    """Print the JSON schema of a recipe (every loss and evaluator with its parameters), for editors and tools.

    A recipe that starts with `# yaml-language-server: $schema=recipe.schema.json` gets completion and checks in
    editors that use the YAML language server.
    """
    from embedtrain.commands.schema import schema_text, write_schema

    with user_errors():
        text = schema_text()
        if output is not None:
            write_schema(output, text, force=force)
    if output is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"wrote the recipe schema to {escape(str(output))}", soft_wrap=True)

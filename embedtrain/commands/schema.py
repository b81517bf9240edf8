"""`embedtrain schema`: the JSON schema of a recipe, generated from the `Recipe` model (and so from the loss and
evaluator registries), for editors (yaml-language-server) and for tools that check recipes without embedtrain."""

import json
from pathlib import Path
from typing import Any

from embedtrain.errors import RecipeError
from embedtrain.recipe.schema import Recipe

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def recipe_json_schema() -> dict[str, Any]:
    """The recipe's JSON schema (Draft 2020-12): strict sections, losses and evaluators as unions discriminated by
    `type` (a wrapper loss's `loss:` too), each field with its description and default."""
    schema = Recipe.model_json_schema()
    header = {"$schema": DIALECT, "title": "embedtrain recipe",
              "description": "A YAML recipe for `embedtrain train`: model, losses, datasets, evaluators, training."}
    return header | {key: value for key, value in schema.items() if key not in header}


def schema_text() -> str:
    """The schema as pretty-printed JSON, ending with a newline."""
    return json.dumps(recipe_json_schema(), indent=2) + "\n"


def write_schema(path: Path, text: str, force: bool = False) -> None:
    """Write `text` to `path`; an existing file is replaced only with `force` (RecipeError, exit 2, otherwise)."""
    if path.is_dir():
        raise RecipeError(f"--output {path} is a directory; give a file name, e.g. {path / 'recipe.schema.json'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w" if force else "x", encoding="utf-8") as file:  # "x": never clobber, even in a race
            file.write(text)
    except FileExistsError:
        raise RecipeError(f"--output {path} already exists; add --force to overwrite it") from None
    except OSError as error:
        raise RecipeError(f"--output {path}: cannot write it ({error.strerror or error})") from None

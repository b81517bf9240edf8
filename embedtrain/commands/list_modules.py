"""`embedtrain list modules RECIPE_OR_MODEL`: the modules of a model and the names of its parameters, which
`training.learning_rate_mapping` patterns are matched against."""

from pathlib import Path

from rich.markup import escape
from rich.table import Table
from torch import nn

from embedtrain.models.parameter_names import named_parameters


def load_for_listing(recipe_or_model: str, overrides: list[str]) -> nn.Module:
    """The model a recipe builds (a .yaml/.yml file, with `--set` overrides) or a saved model as it loads."""
    if Path(recipe_or_model).suffix in (".yaml", ".yml"):
        from embedtrain.models.build import build_model
        from embedtrain.recipe.loading import load_recipe

        return build_model(load_recipe(recipe_or_model, overrides).model)
    from embedtrain.models import load_model

    return load_model(recipe_or_model)


def module_catalogue(model: nn.Module) -> list[dict]:
    """One JSON-serialisable entry per parameter: path, typed name, shape, trainable."""
    return [{"path": entry.path, "typed_name": entry.typed_name, "shape": list(entry.parameter.shape),
             "trainable": entry.parameter.requires_grad} for entry in named_parameters(model)]


def module_table(catalogue: list[dict]) -> Table:
    table = Table("parameter path", "typed name", "shape", "trainable",
                  caption="learning_rate_mapping patterns are matched (re.search) against both names")
    for entry in catalogue:
        table.add_row(escape(entry["path"]), escape(entry["typed_name"]), " x ".join(map(str, entry["shape"])),
                      "yes" if entry["trainable"] else "no")
    return table

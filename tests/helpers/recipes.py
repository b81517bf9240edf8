"""The smallest valid recipe, and writing a recipe file and reading the RecipeError that loading it raises."""

from pathlib import Path

import pytest

from embedtrain.errors import RecipeError
from embedtrain.recipe.loading import load_recipe

# Line numbers below refer to this text: 1 model, 2 base, 3 losses, 4 cosent, 5 type, 6 datasets, 7 train,
# 8 sts, 9 source, 10 evaluators, 11 "- type", 12 name, 13 source, 14 training, 15 output_dir.
MINIMAL = """\
model:
  base: tiny-bert
losses:
  cosent:
    type: CoSENTLoss
datasets:
  train:
    sts:
      source: data/sts.csv
evaluators:
  - type: sts
    name: sts-dev
    source: data/sts.csv
training:
  output_dir: runs/out
"""


def write(directory: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def recipe_error(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(RecipeError) as raised:
        load_recipe(path, overrides)
    return str(raised.value)

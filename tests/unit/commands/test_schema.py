"""`embedtrain schema`: the recipe's JSON schema accepts every shipped recipe, rejects what the `Recipe` model
rejects (unknown keys, unknown loss or evaluator types, a wrapped loss of an unknown type, a field of the wrong
type), carries the fields' descriptions, and is written to stdout or to a file that is never clobbered silently."""

import copy
import json
from pathlib import Path

import pydantic
import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.commands.schema import recipe_json_schema
from embedtrain.errors import ExitCode
from embedtrain.recipe.schema import Recipe

RECIPES = sorted((Path(__file__).parents[3] / "recipes").glob("*.yaml"))
runner = CliRunner()


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = recipe_json_schema()
    Draft202012Validator.check_schema(schema)  # a well-formed Draft 2020-12 schema
    return Draft202012Validator(schema)


def test_every_recipe_is_found():
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.name)
def test_every_shipped_recipe_is_valid(validator, path):
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(recipe)]
    assert errors == []


def _stsb() -> dict:
    return yaml.safe_load((RECIPES[0].parent / "stsb.yaml").read_text(encoding="utf-8"))


def _unknown_training_key(recipe):
    recipe["training"]["learning_rat"] = 1e-5


def _unknown_top_level_key(recipe):
    recipe["optimizer"] = {"name": "adamw"}


def _unknown_loss_type(recipe):
    recipe["losses"]["cosent"] = {"type": "NoSuchLoss"}


def _unknown_loss_parameter(recipe):
    recipe["losses"]["cosent"]["margin"] = 0.5  # CoSENTLoss has no margin


def _unknown_wrapped_loss_type(recipe):
    recipe["losses"]["cosent"] = {"type": "MatryoshkaLoss", "loss": {"type": "NoSuchLoss"}, "matryoshka_dims": [8]}


def _unknown_evaluator_type(recipe):
    recipe["evaluators"][0]["type"] = "no_such_evaluator"


def _epochs_not_a_number(recipe):
    recipe["training"]["epochs"] = "two"


def _scale_not_a_number(recipe):
    recipe["losses"]["cosent"]["scale"] = [20.0]


def _no_losses(recipe):
    recipe["losses"] = {}


@pytest.mark.parametrize("break_recipe", [
    _unknown_training_key, _unknown_top_level_key, _unknown_loss_type, _unknown_loss_parameter,
    _unknown_wrapped_loss_type, _unknown_evaluator_type, _epochs_not_a_number, _scale_not_a_number, _no_losses,
], ids=lambda function: function.__name__.strip("_"))
def test_invalid_recipes_are_rejected_as_the_recipe_model_rejects_them(validator, break_recipe):
    recipe = copy.deepcopy(_stsb())
    assert validator.is_valid(recipe)
    break_recipe(recipe)
    assert not validator.is_valid(recipe)
    with pytest.raises(pydantic.ValidationError):
        Recipe.model_validate(recipe)


def test_cli_prints_pretty_json_with_descriptions():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('{\n  "$schema": "https://json-schema.org/draft/2020-12/schema"')
    schema = json.loads(result.stdout)
    assert schema == recipe_json_schema()
    assert schema["properties"]["losses"]["description"] == "named losses; datasets refer to them by name"
    wrapped = schema["$defs"]["MatryoshkaParams"]["properties"]["loss"]
    assert "the loss to apply at every dimension" in wrapped["description"]
    assert wrapped["discriminator"]["propertyName"] == "type" and "CoSENTLoss" in wrapped["discriminator"]["mapping"]
    assert "description" in schema["$defs"]["DatasetConfig"]["properties"]["streaming"]


def test_cli_writes_the_file_and_refuses_to_clobber_without_force(tmp_path):
    target = tmp_path / "sub" / "recipe.schema.json"
    result = runner.invoke(app, ["schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8")) == recipe_json_schema()

    target.write_text("keep me", encoding="utf-8")
    result = runner.invoke(app, ["schema", "--output", str(target)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "already exists" in result.output and "--force" in result.output
    assert target.read_text(encoding="utf-8") == "keep me"

    result = runner.invoke(app, ["schema", "--output", str(target), "--force"])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8")) == recipe_json_schema()


def test_cli_refuses_a_directory_as_output(tmp_path):
    result = runner.invoke(app, ["schema", "--output", str(tmp_path), "--force"])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "is a directory" in result.output

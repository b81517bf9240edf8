"""The parts of run.json and the tracker settings that need no training run: the recipe fields, the README example,
error messages without this machine's paths, atomic writes."""

from pathlib import Path

import pytest
import yaml
from helpers.recipes import MINIMAL, recipe_error, write

from embedtrain.engine.manifest import relative_message, write_json
from embedtrain.recipe.training import TrainingConfig

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_trackers_example_is_a_valid_training_section():
    example = yaml.safe_load(README.read_text(encoding="utf-8").split("# trackers-example")[1].split("```")[0])
    config = TrainingConfig(**example["training"])
    assert config.report_to == ["tensorboard", "wandb", "mlflow"] and config.track_emissions


@pytest.mark.parametrize(("setting", "message"), [
    ("  report_to: [tensorbord]\n", "recipe.yaml:16: training.report_to[0]: Input should be 'tensorboard', "),
    ("  report_to: [wandb, wandb]\n", "recipe.yaml:16: training.report_to: names a tracker twice"),
    ("  run_name: ''\n", "recipe.yaml:16: training.run_name: "),
])
def test_tracker_settings_are_checked_with_the_recipe(tmp_path, setting, message):
    error = recipe_error(write(tmp_path, MINIMAL + setting))
    assert message in error


def test_an_error_message_names_paths_relative_to_the_run_or_by_public_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "a"
    message = (f"cannot write checkpoint 6 in {run}/checkpoints: disk full (File too large: {run}/checkpoints/"
               f".checkpoint-0000006.partial/model.safetensors); data in /elsewhere/data/train.csv, run {run}")
    assert relative_message(message, run) == (
        "cannot write checkpoint 6 in checkpoints: disk full (File too large: checkpoints/"
        ".checkpoint-0000006.partial/model.safetensors); data in train.csv, run .")
    assert relative_message(f"see {tmp_path}/data/x.csv", run) == "see data/x.csv"  # below the current directory
    assert relative_message("lr 1e-3/2 and a/b stay", run) == "lr 1e-3/2 and a/b stay"


def test_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "run.json"
    write_json(path, {"status": "running"})
    write_json(path, {"status": "finished"})
    assert yaml.safe_load(path.read_text()) == {"status": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]

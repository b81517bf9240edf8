"""`training.push_to_hub`: a tiny run pushing its checkpoints and final model to the local Hub server, through the
real CLI; a Hub that refuses the pushes; a missing token found before training; the recipe's checks."""

from pathlib import Path

import pytest
import yaml
from helpers.hub_server import TOKEN, LocalHub
from huggingface_hub import constants
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode, RecipeError
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

runner = CliRunner()


@pytest.fixture
def hub(monkeypatch):
    with LocalHub() as server:
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


def write_recipe(tmp_path: Path, model: Path, data: Path, push_to_hub: dict, **training) -> Path:
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(data)}}},
        "training": {"output_dir": str(tmp_path / "run"), "epochs": 1, "batch_size": 8, "save_steps": 2,
                     "logging_steps": 1, "push_to_hub": push_to_hub} | training,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def folder_files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_training_pushes_each_checkpoint_when_saved_and_the_final_model_with_its_card(hub, tmp_path, tiny_checkpoint,
                                                                                    sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv,
                          {"repo_id": "me/run", "private": True, "revision": "exp", "every_save": True},
                          save_total_limit=1)
    result = runner.invoke(app, ["train", str(recipe)])

    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    summaries = [commit.summary for commit in hub.commits]
    steps = sorted(int(name.split("-")[1]) for name in {s.split()[1] for s in summaries[:-1]})
    assert steps == [2, 4, 6] and summaries[-1] == "Upload the trained model with embedtrain"
    assert all(commit.revision == "exp" for commit in hub.commits) and hub.repos["me/run"].private
    files = hub.files("me/run", "exp")
    assert {path: data for path, data in files.items() if not path.startswith("checkpoints/")} == \
        folder_files(run / "final")
    assert "README.md" in files
    # Pushed when saved: every checkpoint is on the Hub, though save_total_limit kept only the last one on disk.
    (kept,) = (run / "checkpoints").iterdir()
    assert {path.removeprefix(f"checkpoints/{kept.name}/"): data for path, data in files.items()
            if path.startswith(f"checkpoints/{kept.name}/")} == folder_files(kept)
    assert {path.split("/")[1] for path in files if path.startswith("checkpoints/")} == {
        "checkpoint-0000002", "checkpoint-0000004", "checkpoint-0000006"}
    local_paths = [str(tmp_path), str(tiny_checkpoint), str(sts_csv.parent)]  # the run's, the base model's, the data's
    for commit in hub.commits:
        for path, data in commit.files.items():
            assert not [local for local in local_paths if local.encode() in data], path  # none leaves the machine


def test_a_hub_refusing_pushes_warns_at_each_checkpoint_and_fails_train_with_exit_2_after_saving(
        hub, tmp_path, tiny_checkpoint, sts_csv, caplog):
    hub.refuse["commit"] = (403, "You don't have the rights to push to this repo")
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, {"repo_id": "me/run", "every_save": True})
    result = runner.invoke(app, ["train", str(recipe)])

    output = " ".join(result.output.split())
    assert result.exit_code == ExitCode.INVALID_INPUT, output
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert sum("training continues" in warning and "HTTP 403" in warning for warning in warnings) == 3  # one per save
    assert "HTTP 403" in output and "embedtrain push" in output and "The model is saved in" in output
    assert (tmp_path / "run" / "final" / "model.safetensors").exists() and not hub.commits


@pytest.mark.parametrize("dry_run", [False, True], ids=["train", "dry-run"])
def test_a_missing_token_stops_train_before_any_training(hub, monkeypatch, tmp_path, tiny_checkpoint, sts_csv,
                                                         dry_run):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, {"repo_id": "me/run"})
    result = runner.invoke(app, ["train", str(recipe), *(["--dry-run"] if dry_run else [])])

    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "no Hugging Face token" in result.output
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not hub.requests


@pytest.mark.parametrize("push_to_hub, training, expected", [
    ({"repo_id": "a/b/c"}, {}, "'a/b/c' is not a Hub repo id: use NAME or NAMESPACE/NAME"),
    ({"repo_id": "me/run", "every_save": True}, {"save_steps": None}, "every_save pushes each checkpoint: set save_steps"),
    ({"repo_id": "me/run", "privat": True}, {}, "privat"),
])
def test_the_recipe_checks_push_to_hub(tmp_path, tiny_checkpoint, sts_csv, push_to_hub, training, expected):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, push_to_hub, **training)
    with pytest.raises(RecipeError, match="push_to_hub|training") as raised:
        load_recipe(recipe)
    assert expected in str(raised.value)

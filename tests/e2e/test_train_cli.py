"""End-to-end training through the real CLI on a tiny random BERT: artifacts, falling loss, resume, errors."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState
from helpers.observers import StopAt
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.engine.run import run_training
from embedtrain.errors import ExitCode
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

runner = CliRunner()


def write_recipe(tmp_path: Path, model: Path, train_csv: Path, eval_csv: Path, loss: str = "CoSENTLoss",
                 **training) -> Path:
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": loss}},
        "datasets": {"train": {"sts": {"source": str(train_csv)}}},
        "evaluators": [{"type": "sts", "name": "sts-dev", "source": str(eval_csv)}],
        "training": {"output_dir": str(tmp_path / "run"), "epochs": 3, "batch_size": 8, "learning_rate": 1e-3,
                     "logging_steps": 1, "seed": 7} | training,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def read_metrics(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def train_losses(output_dir: Path) -> dict[int, float]:
    return {record["step"]: record["loss"] for record in read_metrics(output_dir) if "loss" in record}


def test_train_writes_every_artifact_and_the_loss_falls(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, loss="CosineSimilarityLoss", save_steps=6,
                          save_total_limit=1)
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    losses = train_losses(run)
    assert len(losses) == 18  # 48 rows / batch 8 = 6 steps per epoch, 3 epochs
    first, last = sum(list(losses.values())[:3]) / 3, sum(list(losses.values())[-3:]) / 3
    assert last < 0.5 * first
    evaluations = [r for r in read_metrics(run) if "sts-dev_spearman_cosine" in r]
    assert [r["step"] for r in evaluations] == [0, 18]  # before and after training
    assert evaluations[-1]["sts-dev_spearman_cosine"] > evaluations[0]["sts-dev_spearman_cosine"]
    assert load_recipe(run / "recipe.yaml").training.save_steps == 6  # the resolved recipe is loadable as is
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-0000018"]  # save_total_limit=1 keeps only the newest
    for name in ("modules.json", "config_sentence_transformers.json", "model.safetensors", "1_Pooling/config.json"):
        assert (run / "final" / name).exists(), name
    card = (run / "final" / "README.md").read_text()
    assert card.startswith("---\n") and "loss:CosineSimilarityLoss" in card and "sts-dev_spearman_cosine" in card
    # The recipe named the model and data by absolute paths: the card, written for others, shows none of them.
    assert str(tmp_path) not in card and str(tiny_checkpoint.parent) not in card
    assert f"Base model | `{tiny_checkpoint.name}`" in card and "base_model:" not in card
    assert "before vs after training" in result.output


def test_a_card_names_the_hub_ids_the_mirror_copies(tmp_path, tiny_checkpoint, sts_csv, monkeypatch):
    mirror = tmp_path / "mirror.yaml"
    mirror.write_text(yaml.safe_dump({"models": {"org/tiny-bert": str(tiny_checkpoint)},
                                      "datasets": {"org/sts": {"train": str(sts_csv)}}}), encoding="utf-8")
    monkeypatch.setenv("EMBEDTRAIN_MIRROR", str(mirror))
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, epochs=1)
    content = yaml.safe_load(recipe.read_text())
    content["model"]["base"] = "org/tiny-bert"
    recipe.write_text(yaml.safe_dump(content), encoding="utf-8")
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    front_matter = yaml.safe_load(card.split("---\n")[1])
    assert front_matter["base_model"] == "org/tiny-bert"
    assert front_matter["datasets"] == ["org/sts"]  # the training file is the mirror's copy of org/sts
    assert str(tmp_path) not in card


def test_without_an_evaluation_before_training_there_is_no_before_column(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, epochs=1, eval_before_training=False)
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "before vs after training" not in result.output and "after training" in result.output


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, tiny_checkpoint_with_dropout, sts_csv):
    """Dropout on, so RNG state, data position, optimizer and scheduler must all be restored."""
    settings = {"save_steps": 4, "max_steps": 10, "warmup_ratio": 0.2}
    straight = load_recipe(write_recipe(tmp_path / "a", tiny_checkpoint_with_dropout, sts_csv, sts_csv, **settings))
    run_training(straight)
    AcceleratorState._reset_state(reset_partial_state=True)

    interrupted = load_recipe(write_recipe(tmp_path / "b", tiny_checkpoint_with_dropout, sts_csv, sts_csv, **settings))
    with pytest.raises(KeyboardInterrupt):
        run_training(interrupted, observer=StopAt(step=7))  # after the checkpoint at step 4, mid-epoch
    AcceleratorState._reset_state(reset_partial_state=True)
    run_training(interrupted, resume=True)

    expected, resumed = train_losses(tmp_path / "a" / "run"), train_losses(tmp_path / "b" / "run")
    assert sorted(resumed) == list(range(1, 11))  # steps 5-7 of the killed run were replaced, not duplicated
    assert resumed[10] == pytest.approx(expected[10], rel=1e-5, abs=1e-6)
    for step in expected:
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    from safetensors.torch import load_file

    weights_a = load_file(tmp_path / "a" / "run" / "final" / "model.safetensors")
    weights_b = load_file(tmp_path / "b" / "run" / "final" / "model.safetensors")
    for name in weights_a:
        torch.testing.assert_close(weights_a[name], weights_b[name], rtol=1e-5, atol=1e-6)


def test_resume_ignores_a_half_written_checkpoint(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, save_steps=3, max_steps=6)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    checkpoints = tmp_path / "run" / "checkpoints"
    # What a kill leaves behind: a staging folder, and a folder without its completion marker.
    shutil.copytree(checkpoints / "checkpoint-0000006", checkpoints / ".checkpoint-0000009.partial")
    (checkpoints / "checkpoint-0000012").mkdir()
    AcceleratorState._reset_state(reset_partial_state=True)
    result = runner.invoke(app, ["train", str(recipe), "--resume", "--set", "training.max_steps=8"])
    assert result.exit_code == 0, result.output
    assert "resuming at step 6 of 8" in result.output
    assert not (checkpoints / ".checkpoint-0000009.partial").exists()


def test_refuses_to_overwrite_an_existing_run(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, max_steps=1)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "already holds a training run" in result.output and "--resume" in result.output


def test_keeps_the_best_checkpoint_and_saves_it_as_final(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, save_steps=3, eval_steps=3, save_total_limit=1,
                          metric_for_best_model="sts-dev_spearman_cosine", load_best_model_at_end=True)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    run = tmp_path / "run"
    state = json.loads(next((run / "checkpoints").glob("*/trainer_state.json")).read_text())
    evaluations = {r["step"]: r["sts-dev_spearman_cosine"] for r in read_metrics(run) if "sts-dev_spearman_cosine" in r}
    best_step = max((step for step in evaluations if step > 0), key=evaluations.get)
    assert state["best_checkpoint"] == f"checkpoint-{best_step:07d}"
    kept = {p.name for p in (run / "checkpoints").iterdir()}
    assert f"checkpoint-{best_step:07d}" in kept and len(kept) <= 2  # the newest and the best
    best_weights = (run / "checkpoints" / f"checkpoint-{best_step:07d}" / "model" / "model.safetensors").read_bytes()
    assert (run / "final" / "model.safetensors").read_bytes() == best_weights


def test_gradient_accumulation_counts_optimizer_steps(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, epochs=1, batch_size=4, gradient_accumulation_steps=3)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    assert sorted(train_losses(tmp_path / "run")) == [1, 2, 3, 4]  # 12 batches / 3


@pytest.mark.parametrize("change, code, message", [
    ({"training": {"batch_size": 0}}, ExitCode.INVALID_INPUT, "training.batch_size"),
    ({"losses": {"main": {"type": "MultipleNegativesRankingLoss"}}}, ExitCode.DATA_ERROR, "looks like a label"),
    ({"datasets": {"train": {"sts": {"columns": {"sentence1": "sentence1", "sentence2": "sentnce2", "label": "score"}}}}},
     ExitCode.DATA_ERROR, "did you mean 'sentence2'"),
    ({"model": {"base": "/nonexistent/model"}}, ExitCode.INVALID_INPUT, "does not exist"),
])
def test_bad_input_exits_with_its_code_and_no_traceback(tmp_path, tiny_checkpoint, sts_csv, change, code, message):
    path = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv)
    recipe = yaml.safe_load(path.read_text())
    for section, value in change.items():
        for key, sub in value.items():
            if isinstance(sub, dict) and isinstance(recipe[section].get(key), dict):
                recipe[section][key] |= sub
            else:
                recipe[section][key] = sub
    if "train" in change.get("datasets", {}):
        recipe["datasets"]["train"]["sts"] = {"source": str(sts_csv)} | change["datasets"]["train"]["sts"]
    path.write_text(yaml.safe_dump(recipe))
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "final").exists()


def test_version_and_help():
    assert runner.invoke(app, ["--version"]).output.startswith("embedtrain ")
    assert "Examples" in runner.invoke(app, ["train", "--help"]).output


@pytest.mark.slow
def test_two_processes_share_the_data_and_write_once(tmp_path, tiny_checkpoint, sts_csv):
    """`torchrun --nproc_per_node 2` on CPU (gloo): each process gets half the batches; one writes the artifacts."""
    import os
    import subprocess
    import sys

    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, epochs=1, batch_size=4, save_steps=3,
                          logging_steps=1)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "embedtrain", "train",
               str(recipe)]
    environment = os.environ | {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = tmp_path / "run"
    assert sorted(train_losses(run)) == list(range(1, 7))  # 12 batches split over 2 processes
    assert len([r for r in read_metrics(run) if "sts-dev_spearman_cosine" in r]) == 2  # evaluated once, not per rank
    state = run / "checkpoints" / "checkpoint-0000006" / "state"
    assert (state / "random_states_0.pkl").exists() and (state / "random_states_1.pkl").exists()
    assert (run / "final" / "modules.json").exists()


@pytest.mark.parametrize("multi_dataset_sampler", ["proportional", "round_robin", "weighted"])
def test_several_datasets_each_with_its_loss(tmp_path, tiny_checkpoint, sts_csv, triplet_csv, multi_dataset_sampler):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2,label\n" + "a man plays,a man is playing,1\na dog runs,the sun is big,0\n" * 8)
    recipe = {
        "model": {"base": str(tiny_checkpoint)},
        "losses": {"cosent": {"type": "CoSENTLoss"}, "mnrl": {"type": "MultipleNegativesRankingLoss"},
                   "softmax": {"type": "SoftmaxLoss", "num_labels": 2}},
        "datasets": {"train": {
            "sts": {"source": str(sts_csv), "loss": "cosent"},
            "nli": {"source": str(triplet_csv), "loss": "mnrl"},
            "para": {"source": str(pairs), "loss": "softmax", "weight": 2.0},
        }},
        "training": {"output_dir": str(tmp_path / "run"), "batch_size": 8, "logging_steps": 100, "seed": 3,
                     "batch_sampler": "no_duplicates", "multi_dataset_sampler": multi_dataset_sampler},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    final_log = [record for record in read_metrics(tmp_path / "run") if "loss" in record][-1]
    for name in ("sts", "nli", "para"):
        assert math.isfinite(final_log[f"{name}_loss"]), final_log


def test_the_log_reports_batch_diagnostics(tmp_path, tiny_checkpoint, triplet_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, triplet_csv, triplet_csv, loss="MultipleNegativesRankingLoss",
                          max_steps=2)
    recipe_dict = yaml.safe_load(recipe.read_text())
    recipe_dict["evaluators"] = []
    recipe.write_text(yaml.safe_dump(recipe_dict))
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    record = [r for r in read_metrics(tmp_path / "run") if "loss" in r][-1]
    assert 0 <= record["duplicate_rate"] < 1 and 0 < record["negatives_per_anchor"] <= 8 * 2 - 1


@pytest.mark.parametrize("name", ["null", "run #2", "123"])
def test_output_dir_is_taken_as_a_path_whatever_it_reads_as_in_yaml(monkeypatch, tmp_path, tiny_checkpoint, sts_csv,
                                                                   name):
    ran = []
    monkeypatch.setattr("embedtrain.engine.run.run_training", lambda recipe, **options: ran.append(recipe))
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", str(recipe), "--output-dir", name])
    assert result.exit_code == 0, result.output
    assert Path(ran[0].training.output_dir) == Path(name)

"""Streamed training data: checked on its first rows, read lazily through a seeded shuffle buffer, resumable."""

import json

import pytest
import yaml
from accelerate.state import AcceleratorState
from helpers.observers import StopAt

from embedtrain.engine.run import run_training
from embedtrain.errors import DataError, RecipeError
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def streamed_recipe(folder, model, data, **training):
    folder.mkdir(parents=True, exist_ok=True)
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(data), "streaming": True}}},
        "training": {"output_dir": str(folder / "run"), "batch_size": 8, "logging_steps": 1, "seed": 11,
                     "max_steps": 9} | training,
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def losses(folder) -> dict[int, float]:
    records = [json.loads(line) for line in (folder / "run" / "metrics.jsonl").read_text().splitlines()]
    return {record["step"]: record["loss"] for record in records if "loss" in record}


def test_a_stream_trains_across_passes_and_resumes_exactly(tmp_path, tiny_checkpoint_with_dropout, sts_csv):
    """48 rows in batches of 8: 6 batches a pass, so 9 steps start a second pass; the kill lands in it."""
    straight = run_training(load_recipe(streamed_recipe(tmp_path / "a", tiny_checkpoint_with_dropout, sts_csv)))
    assert straight.steps == 9
    AcceleratorState._reset_state(reset_partial_state=True)

    recipe = load_recipe(streamed_recipe(tmp_path / "b", tiny_checkpoint_with_dropout, sts_csv, save_steps=7))
    with pytest.raises(KeyboardInterrupt):
        run_training(recipe, observer=StopAt(step=8))
    AcceleratorState._reset_state(reset_partial_state=True)
    run_training(recipe, resume=True)
    expected, resumed = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert sorted(resumed) == list(range(1, 10))
    for step, loss in expected.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step


def test_a_stream_needs_max_steps_and_random_batches(tmp_path, tiny_checkpoint, sts_csv):
    path = streamed_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=None, batch_sampler="no_duplicates")
    with pytest.raises(RecipeError) as raised:
        load_recipe(path)
    message = str(raised.value)
    assert "set training.max_steps" in message and "needs random access" in message


def test_a_stream_is_checked_before_training(tmp_path, tiny_checkpoint):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"sentence1": "a", "sentence2": null, "score": 0.5}\n' * 3)
    with pytest.raises(DataError) as raised:
        run_training(load_recipe(streamed_recipe(tmp_path, tiny_checkpoint, data)))
    assert "column 'sentence2' (sentence2) has no values at all" in str(raised.value)
    assert not (tmp_path / "run" / "final").exists()


@pytest.mark.slow
def test_two_processes_split_a_stream(tmp_path, tiny_checkpoint, sts_csv):
    import os
    import subprocess
    import sys

    path = streamed_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=4, save_steps=2)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "embedtrain", "train",
               str(path)]
    environment = os.environ | {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert sorted(losses(tmp_path)) == [1, 2, 3, 4]
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-0000004" / "state" / "random_states_1.pkl").exists()

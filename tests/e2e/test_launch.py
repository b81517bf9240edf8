"""`embedtrain train --launch configs/cpu-2proc.yaml`: the parent checks, accelerate starts two CPU processes (gloo)
that train together, and the parent exits as they did."""

import json
import subprocess
import sys

import pytest
import yaml
from helpers.processes import WORKTREE, child_env, tiny_recipe

pytestmark = pytest.mark.slow  # two training processes and their launcher (~15-30 s on 2 cores)


def launch(recipe, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedtrain", "train", str(recipe), "--launch",
                           str(WORKTREE / "configs" / "cpu-2proc.yaml"), *args],
                          env=child_env(), capture_output=True, text=True, timeout=300)


def test_two_cpu_processes_train_a_recipe(tmp_path, tiny_checkpoint, sts_csv) -> None:
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=2)
    completed = launch(recipe)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["processes"] == 2
    rows = len(sts_csv.read_text().splitlines()) - 1
    batches_per_process = -(-rows // (8 * 2))  # each process takes every other batch of 8
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["epoch"] == pytest.approx(1 / batches_per_process, abs=1e-4)
    assert (run / "final" / "model.safetensors").exists()


def test_the_launched_processes_exit_code_is_the_commands(tmp_path, tiny_checkpoint, sts_csv) -> None:
    """A failure inside the processes (a data file gone after the parent's recipe check) keeps its documented code (3: data)."""
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=2)
    config = yaml.safe_load(recipe.read_text())
    config["datasets"]["train"]["sts"]["source"] = str(tmp_path / "missing.csv")
    recipe.write_text(yaml.safe_dump(config))
    completed = launch(recipe)
    assert completed.returncode == 3, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "missing.csv" in completed.stdout + completed.stderr

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
    """Two processes train together, and evaluate as one process does: the evaluation before training (evaluators
    and eval loss, of the same initial model) is that of a one-process run. They train the batches one process
    accumulating two batches a step trains, into the second epoch too (each epoch has its own order), with its losses."""
    evaluation = {"evaluators": [{"type": "sts", "name": "sts-dev", "source": str(sts_csv)}],
                  "datasets": {"train": {"sts": {"source": str(sts_csv)}}, "eval": {"sts-dev": {"source": str(sts_csv)}}}}
    recipes = {}
    rows = len(sts_csv.read_text().splitlines()) - 1
    batches_per_process = -(-rows // (8 * 2))  # each process takes every other batch of 8
    for name, accumulation in (("two", 1), ("one", 2)):
        recipes[name] = tiny_recipe(tmp_path / name, tiny_checkpoint, sts_csv, max_steps=batches_per_process + 1,
                                    gradient_accumulation_steps=accumulation, eval_before_training=True)
        recipes[name].write_text(yaml.safe_dump(yaml.safe_load(recipes[name].read_text()) | evaluation))
    completed = launch(recipes["two"])
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "embedtrain", "train", str(recipes["one"])], env=child_env(),
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout[-3000:]

    two, one = tmp_path / "two" / "run", tmp_path / "one" / "run"
    assert json.loads((two / "run.json").read_text())["processes"] == 2
    records = [json.loads(line) for line in (two / "metrics.jsonl").read_text().splitlines()]
    single_records = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()]
    assert records[1]["epoch"] == pytest.approx(1 / batches_per_process, abs=1e-4)
    losses = {record["step"]: record["loss"] for record in records if "loss" in record}
    assert len(losses) == batches_per_process + 1  # the last step is the second epoch's first
    assert losses == pytest.approx({record["step"]: record["loss"] for record in single_records if "loss" in record},
                                   rel=1e-5)
    before, single_before = records[0], single_records[0]
    assert before["step"] == single_before["step"] == 0
    assert {"sts-dev_spearman_cosine", "eval_sts-dev_loss"} <= before.keys()
    assert before == pytest.approx(single_before, rel=1e-5)
    assert (two / "final" / "model.safetensors").exists()


def test_the_launched_processes_exit_code_is_the_commands(tmp_path, tiny_checkpoint, sts_csv) -> None:
    """A failure inside the processes (a data file gone after the parent's recipe check) keeps its documented code (3: data)."""
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=2)
    config = yaml.safe_load(recipe.read_text())
    config["datasets"]["train"]["sts"]["source"] = str(tmp_path / "missing.csv")
    recipe.write_text(yaml.safe_dump(config))
    completed = launch(recipe)
    assert completed.returncode == 3, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "missing.csv" in completed.stdout + completed.stderr

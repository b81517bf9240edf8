"""`embedtrain train --dry-run`: every check of a run, the plan printed, nothing trained and nothing written."""

import math
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

runner = CliRunner()


def write_recipe(tmp_path: Path, model: Path, train_csv: Path, eval_csv: Path, **training) -> Path:
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(train_csv)}}},
        "evaluators": [{"type": "sts", "name": "sts-dev", "source": str(eval_csv)}],
        "training": {"output_dir": str(tmp_path / "run"), "epochs": 3, "batch_size": 8, "seed": 7} | training,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, tiny_checkpoint, sts_csv):
    rows, batch_size, epochs, accumulation = 48, 8, 3, 2
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, epochs=epochs, batch_size=batch_size,
                          gradient_accumulation_steps=accumulation, warmup_ratio=0.2, eval_steps=2, save_steps=4)
    result = runner.invoke(app, ["train", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output
    batches = math.ceil(rows / batch_size)  # 6
    steps_per_epoch = math.ceil(batches / accumulation)  # 3
    total = epochs * steps_per_epoch  # 9
    output = " ".join(result.output.split())  # rich wraps long lines
    assert f"batches per epoch {batches} " in output
    assert f"steps per epoch {steps_per_epoch} " in output
    assert f"optimizer steps {total} ({epochs} epochs x {steps_per_epoch} steps)" in output
    assert f"warm-up steps {math.ceil(0.2 * total)} " in output
    assert "evaluations at steps 0, 2, 4, 6, 8, 9 " in output
    assert "checkpoints at steps 4, 8, 9 " in output
    assert "tokens per batch" in output and "padding" in output
    assert "estimate on cpu" in output and "s per optimizer step" in output
    assert "model.0 (Transformer)" in output
    assert not (tmp_path / "run").exists()


def test_dry_run_of_a_bad_recipe_exits_2(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv, epochs=0)
    result = runner.invoke(app, ["train", str(recipe), "--dry-run"])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert not (tmp_path / "run").exists()


def test_dry_run_reports_a_finished_run_and_leaves_it_alone(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, sts_csv)
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "model.safetensors").write_bytes(b"weights")
    before = sorted((path.relative_to(run), path.stat().st_mtime_ns) for path in run.rglob("*"))
    result = runner.invoke(app, ["train", str(recipe), "--dry-run"])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "already holds a training run" in " ".join(result.output.split())
    assert sorted((path.relative_to(run), path.stat().st_mtime_ns) for path in run.rglob("*")) == before
    shutil.rmtree(run)

"""A recipe's `mine:` step through the CLI, on a tiny random BERT: the first `train` mines (the summary of `embedtrain
mine`, the same rows it writes) and caches the rows in the run directory; the dry run before it writes nothing and
says what will be mined; later runs and `--resume` reuse the rows without loading the mining model; a changed
option mines again; re-scoring and scores feed a distillation loss."""

import json
import logging

import pyarrow.parquet as pq
import pytest
import yaml
from helpers.mining import write_pairs_csv
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.engine import mined_data
from embedtrain.evaluation.mining.output import sidecar_path

pytestmark = pytest.mark.usefixtures("one_thread", "fresh_accelerate_state")
runner = CliRunner()


@pytest.fixture
def pairs_csv(tmp_path):
    return write_pairs_csv(tmp_path / "pairs.csv", queries=16)


def write_recipe(tmp_path, model, pairs, loss: str = "MultipleNegativesRankingLoss", **mine) -> str:
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": loss}},
        "datasets": {"train": {"qa": {"source": str(pairs), "mine": {"model": str(model)} | mine}}},
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "batch_size": 4, "save_steps": 1,
                     "batch_sampler": "no_duplicates"},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return str(path)


def run(*arguments):
    result = runner.invoke(app, [str(argument) for argument in arguments])
    return result, " ".join(result.output.split())


def files_under(folder):
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


def mined_files(tmp_path):
    return sorted((tmp_path / "run" / "mined").glob("*.parquet"))


def test_the_first_train_mines_later_runs_reuse_and_a_changed_option_mines_again(tmp_path, tiny_checkpoint, pairs_csv,
                                                                                 monkeypatch, caplog):
    recipe = write_recipe(tmp_path, tiny_checkpoint, pairs_csv, num_negatives=2, output_format="n-tuple")
    before = files_under(tmp_path)
    result, shown = run("train", recipe, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"mining datasets.train.qa: negatives to be mined by {tiny_checkpoint.name}" in shown
    assert "not there yet" in shown and "≤" in shown
    assert files_under(tmp_path) == before  # nothing written, not even the run directory

    result, shown = run("train", recipe)
    assert result.exit_code == 0, result.output
    for fragment in ("datasets.train.qa: mined negatives", "queries skipped", "rows written", "(n-tuple)",
                     "positive - negative"):
        assert fragment in shown, shown
    [cache] = mined_files(tmp_path)
    provenance = json.loads(sidecar_path(cache).read_text())
    assert provenance["options"]["num_negatives"] == 2 and provenance["cache_key"].startswith(cache.stem[3:])
    # The rows trained on are the rows `embedtrain mine` writes with the same options.
    by_command = tmp_path / "by-command.parquet"
    result, _ = run("mine", "--data", pairs_csv, "--model", tiny_checkpoint, "--output", by_command,
                    "--num-negatives", "2", "--output-format", "n-tuple")
    assert result.exit_code == 0, result.output
    assert pq.read_table(cache).equals(pq.read_table(by_command))
    written = cache.stat().st_mtime_ns

    result, shown = run("train", recipe, "--resume", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "mining datasets.train.qa: mined negatives cached in" in shown
    assert ".parquet; the run reuses them" in shown, shown

    def no_model(*arguments, **options):
        raise AssertionError("the mining model was loaded although the mined rows are cached")

    monkeypatch.setattr(mined_data, "load_embedder", no_model)
    with caplog.at_level(logging.INFO, logger="embedtrain"):
        result, _ = run("train", recipe, "--resume")
    assert result.exit_code == 0, result.output
    assert f"datasets.train.qa: reusing mined negatives from {cache}" in caplog.text
    assert mined_files(tmp_path) == [cache] and cache.stat().st_mtime_ns == written

    monkeypatch.undo()
    result, shown = run("train", recipe, "--resume", "--set", "datasets.train.qa.mine.num_negatives=1")
    assert result.exit_code == 0, result.output
    assert "datasets.train.qa: mined negatives" in shown
    assert len(mined_files(tmp_path)) == 2 and cache.stat().st_mtime_ns == written  # the first one is kept
    [again] = [path for path in mined_files(tmp_path) if path != cache]
    assert pq.read_table(again).column_names == ["question", "answer", "negative_1"]


def test_a_run_stopped_after_mining_reuses_the_rows(tmp_path, tiny_checkpoint, pairs_csv, monkeypatch):
    recipe = write_recipe(tmp_path, tiny_checkpoint, pairs_csv)

    def stop(*arguments, **options):
        raise KeyboardInterrupt  # stopped at the first step, before any checkpoint

    monkeypatch.setattr("embedtrain.engine.trainer.Trainer.train", stop)
    result, _ = run("train", recipe)
    assert result.exit_code != 0
    [cache] = mined_files(tmp_path)
    written = cache.stat().st_mtime_ns
    monkeypatch.undo()
    monkeypatch.setattr(mined_data, "load_embedder", lambda *a, **k: pytest.fail("mined again"))
    result, _ = run("train", recipe)  # no checkpoint: a new run into the same directory, no --resume needed
    assert result.exit_code == 0, result.output
    assert mined_files(tmp_path) == [cache] and cache.stat().st_mtime_ns == written


def test_rescored_triplets_with_scores_train_margin_mse(tmp_path, tiny_checkpoint, pairs_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, pairs_csv, loss="MarginMSELoss", num_negatives=1,
                          output_scores=True, rescore=str(tiny_checkpoint), rescore_kind="dense",
                          range_max=6)
    result, shown = run("train", recipe)
    assert result.exit_code == 0, result.output
    assert f"re-scored by {tiny_checkpoint.name}" in shown
    [cache] = mined_files(tmp_path)
    rows = pq.read_table(cache).to_pylist()
    assert list(rows[0]) == ["question", "answer", "negative", "scores"] and all(len(r["scores"]) == 2 for r in rows)
    sidecar = json.loads(sidecar_path(cache).read_text())
    assert sidecar["rescore_model"] == tiny_checkpoint.name and sidecar["rescore_kind"] == "dense"


def test_in_two_processes_the_main_one_mines_and_both_stop_on_its_error(tmp_path, tiny_checkpoint, pairs_csv):
    """`torchrun` with two CPU processes: the main process mines once and the other trains on the rows it wrote; when
    mining finds nothing, both processes exit with the data error rather than one waiting for the other."""
    import os
    import subprocess
    import sys

    def train(folder, **mine):
        folder.mkdir()
        recipe = write_recipe(folder, tiny_checkpoint, pairs_csv, **mine)
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "embedtrain", "train",
                   recipe]
        environment = os.environ | {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)

    completed = train(tmp_path / "good")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (completed.stdout + completed.stderr).count("mined negatives") == 1
    assert len(mined_files(tmp_path / "good")) == 1 and (tmp_path / "good" / "run" / "final").exists()

    completed = train(tmp_path / "bad", max_score=-1.0)
    assert completed.returncode != 0
    assert (completed.stdout + completed.stderr).count("datasets.train.qa.mine: no query got a negative") == 2


def test_a_plain_rescorer_is_named_by_the_dry_run_and_by_train_before_mining(tmp_path, tiny_checkpoint, pairs_csv,
                                                                             monkeypatch):
    recipe = write_recipe(tmp_path, tiny_checkpoint, pairs_csv, rescore=str(tiny_checkpoint))
    monkeypatch.setattr(mined_data, "load_embedder", lambda *a, **k: pytest.fail("the mining model was loaded"))
    for arguments in (["--dry-run"], []):
        result, shown = run("train", recipe, *arguments)
        assert result.exit_code == 2, result.output
        assert f"datasets.train.qa.mine.rescore {tiny_checkpoint}: a plain checkpoint" in shown
        assert "set datasets.train.qa.mine.rescore_kind dense (or sparse)" in shown
    assert not mined_files(tmp_path)

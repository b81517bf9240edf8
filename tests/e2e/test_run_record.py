"""What a run leaves behind besides its model (issue 14, parts 3, 4 and 6): the trackers' files read back with each
tracker's own reader, run.json in each end state, metrics.json, `train --fail-under` and `embedtrain report`."""

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from accelerate.state import AcceleratorState
from helpers import wandb_log
from helpers.observers import StopAt
from helpers.processes import child_env, forked_train, logged_steps, tiny_recipe
from typer.testing import CliRunner

from embedtrain.card.model_card import ModelCardWriter
from embedtrain.cli import app
from embedtrain.engine import trackers
from embedtrain.engine.run import run_training
from embedtrain.errors import ExitCode
from embedtrain.evaluation.mining.output import fingerprint
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

runner = CliRunner()


@pytest.fixture
def offline_trackers(monkeypatch):
    """No tracker configuration from the environment: embedtrain's own defaults (W&B offline, MLflow file store).
    The trackers come with the trackers extra, which `make install` installs."""
    for package in ("tensorboard", "wandb", "mlflow"):
        pytest.importorskip(package)
    for name in ("WANDB_MODE", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")


def write_recipe(directory: Path, model: Path, data: Path, **training) -> Path:
    """4 steps of CoSENT with an sts evaluator (before and after training), logging every step."""
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(data)}}},
        "evaluators": [{"type": "sts", "name": "sts-dev", "source": str(data)}],
        "training": {"output_dir": str(directory / "run"), "max_steps": 4, "batch_size": 8, "learning_rate": 1e-3,
                     "logging_steps": 1, "seed": 7} | training,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def logged(run: Path, name: str) -> dict[int, float]:
    """step -> value of `name` in metrics.jsonl."""
    return {record["step"]: record[name] for record in read_log(run) if name in record}


def run_json(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


# -- trackers ---------------------------------------------------------------------------------------------------


def test_tensorboard_wandb_and_mlflow_record_the_logged_scalars_and_the_recipe(tmp_path, tiny_checkpoint, sts_csv,
                                                                             offline_trackers):
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, report_to=["tensorboard", "wandb", "mlflow"],
                          run_name="first-try", project_name="tiny-sts")
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    losses, spearman = logged(run, "loss"), logged(run, "sts-dev_spearman_cosine")
    rates = logged(run, "learning_rate")
    assert sorted(losses) == [1, 2, 3, 4] and sorted(spearman) == [0, 4]
    assert run_json(run)["trackers"] == {name: f"logs/{name}" for name in ("tensorboard", "wandb", "mlflow")}

    events = EventAccumulator(str(run / "logs" / "tensorboard" / "first-try"))
    events.Reload()
    for name, expected in (("loss", losses), ("learning_rate", rates), ("sts-dev_spearman_cosine", spearman)):
        assert {e.step: e.value for e in events.Scalars(name)} == pytest.approx(expected, rel=1e-6), name
    assert "grad_norm" in events.Tags()["scalars"] and "samples_per_second" in events.Tags()["scalars"]

    (wandb_file,) = (run / "logs" / "wandb").glob("offline-run-*/run-*.wandb")
    rows = wandb_log.history(wandb_file)
    assert {row["_step"]: row["loss"] for row in rows if "loss" in row} == pytest.approx(losses, rel=1e-9)
    assert {row["_step"]: row["sts-dev_spearman_cosine"] for row in rows
            if "sts-dev_spearman_cosine" in row} == pytest.approx(spearman, rel=1e-9)
    config = wandb_log.config(wandb_file)
    assert config["training.learning_rate"] == 1e-3 and config["losses.main.type"] == "CoSENTLoss"
    assert config["evaluators.0.name"] == "sts-dev"
    assert wandb_log.run_name(wandb_file) == "first-try"

    client = MlflowClient((run / "logs" / "mlflow").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "tiny-sts"]
    (mlflow_run,) = client.search_runs([experiment.experiment_id])
    assert mlflow_run.info.run_name == "first-try"
    params = mlflow_run.data.params
    assert params["training.learning_rate"] == "0.001" and params["losses.main.type"] == "CoSENTLoss"
    for name, expected in (("loss", losses), ("sts-dev_spearman_cosine", spearman)):
        history = client.get_metric_history(mlflow_run.info.run_id, name)
        assert {m.step: m.value for m in history} == pytest.approx(expected, rel=1e-9), name

    # The recipe named the model and data by absolute paths: the trackers' config holds their public names only.
    for values in (config, params):
        assert not [key for key, value in values.items() if str(tmp_path) in str(value)]
    assert params["model.base"] == tiny_checkpoint.name


def test_a_tracker_that_is_not_installed_is_a_recipe_error_before_anything_runs(tmp_path, tiny_checkpoint, sts_csv,
                                                                                monkeypatch):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, report_to=["tensorboard", "wandb"],
                          track_emissions=True)
    absent = {"wandb", "codecarbon"}
    find_spec = trackers.importlib.util.find_spec
    monkeypatch.setattr(trackers.importlib.util, "find_spec",
                        lambda name, *args: None if name in absent else find_spec(name, *args))
    for command in (["train", str(recipe)], ["train", str(recipe), "--dry-run"]):
        result = runner.invoke(app, command)
        assert result.exit_code == ExitCode.INVALID_INPUT, result.output
        assert "training.report_to: wandb is not installed; pip install 'embedtrain[trackers]'" in result.output
        assert "training.track_emissions: codecarbon is not installed" in result.output
        assert not (tmp_path / "run").exists()


def test_a_tracker_outside_the_extra_names_its_own_package(tmp_path, tiny_checkpoint, sts_csv, monkeypatch):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, report_to=["aim"])
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda name, *args: None)
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "training.report_to: aim is not installed; pip install aim" in result.output


def test_the_tracker_config_is_the_flat_recipe_without_local_paths(tmp_path, tiny_checkpoint, sts_csv):
    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, report_to=["tensorboard"]))
    config = trackers.tracker_config(recipe)
    assert config["training.report_to.0"] == "tensorboard" and config["training.adam_betas.1"] == 0.999
    assert config["training.max_grad_norm"] == 1.0 and config["model.prompts"] == "{}"
    assert config["datasets.train.sts.source"] == sts_csv.name and config["training.output_dir"] == "run"
    assert all(isinstance(value, str | int | float | bool) for value in config.values())


# -- emissions ----------------------------------------------------------------------------------------------------


def test_track_emissions_measures_the_run_for_run_json_and_the_card(tmp_path, tiny_checkpoint, sts_csv, monkeypatch):
    pytest.importorskip("codecarbon")  # the trackers extra
    handed: list = []
    original = ModelCardWriter.__call__

    def keep_run(self, directory, metrics, history, run=None):
        handed.append(run)
        original(self, directory, metrics, history, run=run)

    monkeypatch.setattr(ModelCardWriter, "__call__", keep_run)
    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, track_emissions=True, save_steps=2,
                                      metric_for_best_model="sts-dev_spearman_cosine", eval_steps=2))
    run_training(recipe)
    run = tmp_path / "run"
    manifest = run_json(run)
    assert manifest["emissions_kg"] > 0
    assert (run / "logs" / "codecarbon" / "emissions.csv").exists()
    (facts,) = handed
    assert facts.emissions_kg == manifest["emissions_kg"] and facts.seconds > 0
    assert facts.best_step == manifest["best_checkpoint"]["step"] in (2, 4)
    assert facts.hardware == manifest["hardware"]


# -- run.json and metrics.json ------------------------------------------------------------------------------------


def test_a_finished_run_records_what_ran_and_how_it_ended(tmp_path, tiny_checkpoint, sts_csv):
    recipe_file = write_recipe(tmp_path / "project", tiny_checkpoint, sts_csv, save_steps=2, eval_steps=2,
                               metric_for_best_model="sts-dev_spearman_cosine", load_best_model_at_end=True)
    git = ["git", "-C", str(recipe_file.parent), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "recipe.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "recipe"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()

    result = runner.invoke(app, ["train", str(recipe_file)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "project" / "run"
    text = (run / "run.json").read_text()
    assert str(tmp_path) not in text  # paths relative to the run, sources by public name
    manifest = json.loads(text)
    assert manifest["status"] == "finished" and manifest["error"] is None
    assert manifest["steps"] == {"done": 4, "total": 4}
    assert manifest["git"] == {"commit": head, "dirty": False}
    assert manifest["recipe"] == {"file": "recipe.yaml", "sha256": "sha256:" + hashlib.sha256(
        (run / "recipe.yaml").read_bytes()).hexdigest()}
    rows = [line.split(",") for line in sts_csv.read_text().splitlines()[1:]]
    assert manifest["data"]["train"]["sts"] == {
        "source": sts_csv.name, "subset": None, "split": "train", "revision": None,
        "columns": ["sentence1", "sentence2", "score"], "rows": len(rows),
        "fingerprint": fingerprint([r[0] for r in rows], [r[1] for r in rows], [float(r[2]) for r in rows])}
    assert manifest["processes"] == 1 and manifest["host"] and manifest["versions"]["torch"]
    assert manifest["started"] <= manifest["ended"] and manifest["seconds"] > 0
    assert manifest["started"].endswith("+00:00")
    assert manifest["latest_checkpoint"] == "checkpoints/checkpoint-0000004"

    evaluations = {record["step"]: record for record in read_log(run) if "sts-dev_spearman_cosine" in record}
    best_step = max((2, 4), key=lambda step: evaluations[step]["sts-dev_spearman_cosine"])
    best = evaluations[best_step]
    assert manifest["best_checkpoint"] == {"path": f"checkpoints/checkpoint-{best_step:07d}", "step": best_step,
                                           "value": best["sts-dev_spearman_cosine"]}
    # final/ holds the best checkpoint's model: metrics.json and run.json give that model's evaluation.
    final_metrics = {name: value for name, value in best.items() if name != "step"}
    assert json.loads((run / "metrics.json").read_text()) == {"model": "final", "step": best_step,
                                                              "metrics": final_metrics}
    assert manifest["final"] == {"model": "final", "card": "final/README.md", "metrics_file": "metrics.json",
                                 "evaluated_at_step": best_step, "metrics": final_metrics}
    assert not list(run.glob(".*.tmp"))  # written through a temporary file, renamed into place


def test_without_a_git_repository_run_json_has_no_commit(tmp_path, tiny_checkpoint, sts_csv, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # tmp_path is not inside a repository
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=1)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    manifest = run_json(tmp_path / "run")
    assert manifest["git"] is None
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 1


def test_a_failed_run_records_its_error(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, save_steps=1)
    # A scale beyond float32 makes CoSENT's logits infinite: the run stops at the first check.
    result = runner.invoke(app, ["train", str(recipe), "--set", "losses.main.scale=1e39"])
    assert result.exit_code == ExitCode.RUNTIME_FAILURE, result.output
    manifest = run_json(tmp_path / "run")
    assert manifest["status"] == "failed" and manifest["ended"]
    assert manifest["error"].startswith("the training loss of dataset 'sts' became non-finite at step 1")
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_an_interrupted_run_says_so_and_a_resume_finishes_it(tmp_path, tiny_checkpoint, sts_csv):
    recipe_file = write_recipe(tmp_path, tiny_checkpoint, sts_csv, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_recipe(recipe_file), observer=StopAt(3))
    manifest = run_json(tmp_path / "run")
    assert manifest["status"] == "interrupted" and manifest["steps"] == {"done": 3, "total": 4}
    assert manifest["latest_checkpoint"] == "checkpoints/checkpoint-0000002"
    AcceleratorState._reset_state(reset_partial_state=True)
    run_training(load_recipe(recipe_file), resume=True)
    manifest = run_json(tmp_path / "run")
    assert manifest["status"] == "finished" and manifest["resumed"] and manifest["steps"]["done"] == 4


def test_a_sigterm_leaves_an_interrupted_run_with_its_checkpoint(tmp_path, tiny_checkpoint, sts_csv):
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=400)
    run, log = tmp_path / "run", tmp_path / "log"
    process = forked_train(recipe, log)
    while logged_steps(run) < 3 and process.is_alive():
        pass
    os.kill(process.pid, signal.SIGTERM)
    process.join(60)
    assert process.exitcode == ExitCode.RUNTIME_FAILURE, log.read_text()[-3000:]
    manifest = run_json(run)
    step = manifest["steps"]["done"]
    assert manifest["status"] == "interrupted" and step >= 3
    assert manifest["error"] == (f"stopped by SIGTERM after step {step}, saved in checkpoints/"
                                 f"checkpoint-{step:07d}; continue with the same command and --resume")
    assert manifest["latest_checkpoint"] == f"checkpoints/checkpoint-{step:07d}"


# -- train --fail-under -------------------------------------------------------------------------------------------


def test_train_fail_under_exits_5_after_saving(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv)
    result = runner.invoke(app, ["train", str(recipe), "--fail-under", "sts-dev_spearman_cosine=1.01",
                                 "--fail-under", "sts-dev_pearson_cosine=-1"])
    assert result.exit_code == ExitCode.BELOW_THRESHOLD, result.output
    value = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["sts-dev_spearman_cosine"]
    assert f"below threshold: sts-dev_spearman_cosine = {value:.4f} < 1.01" in result.output
    assert "pearson" not in result.output.split("below threshold")[1]
    assert (tmp_path / "run" / "final" / "model.safetensors").exists()
    assert run_json(tmp_path / "run")["status"] == "finished"


def test_train_fail_under_passes_and_rejects_unknown_metrics_before_training(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=1)
    result = runner.invoke(app, ["train", str(recipe), "--fail-under", "sts-dev_spearman_cosin=0.5"])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "--fail-under names ['sts-dev_spearman_cosin']" in result.output
    assert "did you mean 'sts-dev_spearman_cosine'" in result.output
    assert not (tmp_path / "run").exists()
    result = runner.invoke(app, ["train", str(recipe), "--fail-under", "sts-dev_spearman_cosine"])
    assert result.exit_code == ExitCode.INVALID_INPUT and "METRIC=VALUE" in result.output
    result = runner.invoke(app, ["train", str(recipe), "--fail-under", "sts-dev_spearman_cosine=-1"])
    assert result.exit_code == 0, result.output


# -- embedtrain report --------------------------------------------------------------------------------------------


def test_report_sums_up_a_finished_run(tmp_path, tiny_checkpoint, sts_csv, offline_trackers):
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, report_to=["tensorboard"], save_steps=2,
                          eval_steps=2, metric_for_best_model="sts-dev_spearman_cosine")
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    run = tmp_path / "run"
    result = runner.invoke(app, ["report", str(run)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    output = result.output
    manifest = run_json(run)
    assert "finished" in output and "4 / 4" in output and "samples/s" in output
    final = manifest["final"]["metrics"]["sts-dev_spearman_cosine"]
    assert f"sts-dev_spearman_cosine │ {final:.4f}" in output
    best = manifest["best_checkpoint"]
    assert (f"best checkpoint │ step {best['step']}: sts-dev_spearman_cosine = {best['value']:.4f} "
            f"(checkpoints/checkpoint-{best['step']:07d})") in output
    for path in ("final/README.md", "metrics.json", "metrics.jsonl", "recipe.yaml", "logs/tensorboard",
                 "checkpoints/checkpoint-0000004"):
        assert path in output, path
    assert str(tmp_path) not in output.replace(str(run), "")

    as_json = json.loads(runner.invoke(app, ["report", str(run), "--json"]).stdout)
    rates = sorted(record["samples_per_second"] for record in read_log(run) if "samples_per_second" in record)
    assert as_json["progress"] == {"latest_step": 4, "samples_per_second": (rates[1] + rates[2]) / 2,
                                   "latest_evaluation": read_log(run)[-1], "held_by_a_process": False}
    assert {key: value for key, value in as_json.items() if key != "progress"} == manifest


def test_report_tells_how_to_continue_an_interrupted_run(tmp_path, tiny_checkpoint, sts_csv):
    recipe_file = write_recipe(tmp_path, tiny_checkpoint, sts_csv, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        run_training(load_recipe(recipe_file), observer=StopAt(3))
    result = runner.invoke(app, ["report", str(tmp_path / "run")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "interrupted" in result.output and "3 / 4" in result.output and "--resume" in result.output
    assert "checkpoints/checkpoint-0000002" in result.output

    # A run killed with -9 never got to say so: `running`, but no process holds the directory.
    manifest = run_json(tmp_path / "run") | {"status": "running", "error": None, "ended": None}
    (tmp_path / "run" / "run.json").write_text(json.dumps(manifest))
    output = " ".join(runner.invoke(app, ["report", str(tmp_path / "run")], env={"COLUMNS": "300"}).output.split())
    assert "running" in output and "no process holds the directory: the run was killed" in output
    assert "so far" in output  # the time since it started


@pytest.mark.parametrize("case", ["missing", "no run.json", "bad json"])
def test_report_on_something_that_is_not_a_run_exits_2(tmp_path, case):
    folder = tmp_path / "somewhere"
    if case != "missing":
        folder.mkdir()
    if case == "bad json":
        (folder / "run.json").write_text("{not json")
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert {"missing": "not a directory", "no run.json": "no run.json, so not the output directory",
            "bad json": "cannot be read as JSON"}[case] in result.output


def test_with_two_processes_the_main_one_alone_records_and_a_threshold_fails_the_launch(tmp_path, tiny_checkpoint,
                                                                                      sts_csv, offline_trackers):
    """`torchrun --nproc_per_node 2` on CPU: one W&B run, one TensorBoard log, run.json from the main process; the
    main process's exit code 5 fails the launch."""
    import sys

    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, report_to=["tensorboard", "wandb"], max_steps=3,
                          save_steps=3)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "embedtrain", "train",
               str(recipe), "--fail-under", "sts-dev_spearman_cosine=1.01"]
    environment = child_env() | {"ACCELERATE_USE_CPU": "true", "WANDB_SILENT": "true"}
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode != 0 and "below threshold: sts-dev_spearman_cosine" in completed.stderr, \
        completed.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / "final" / "model.safetensors").exists()
    manifest = run_json(run)
    assert manifest["status"] == "finished" and manifest["processes"] == 2
    assert manifest["steps"] == {"done": 3, "total": 3}
    assert len(list((run / "logs" / "wandb").glob("offline-run-*"))) == 1
    (wandb_file,) = (run / "logs" / "wandb").glob("offline-run-*/run-*.wandb")
    assert sorted(row["_step"] for row in wandb_log.history(wandb_file) if "loss" in row) == [1, 2, 3]
    assert len(list((run / "logs" / "tensorboard" / "run").glob("events.out.tfevents.*"))) == 1


def test_a_tracker_that_cannot_start_fails_the_run_naming_it(tmp_path, tiny_checkpoint, sts_csv, offline_trackers,
                                                            monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")  # no API key here: W&B refuses to start
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))  # no login of this machine either
    recipe = write_recipe(tmp_path, tiny_checkpoint, sts_csv, report_to=["wandb"])
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == ExitCode.RUNTIME_FAILURE, result.output
    assert "training.report_to: a tracker of ['wandb'] could not start (UsageError: No API key configured" \
        in " ".join(result.output.split())
    manifest = run_json(tmp_path / "run")
    assert manifest["status"] == "failed" and "could not start" in manifest["error"]

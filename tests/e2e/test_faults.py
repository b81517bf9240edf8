"""Faults during training, injected for real (issue 18): kill -9 anywhere, SIGTERM/SIGINT, a full disk, a non-finite
loss, two runs on one output directory, a corrupt newest checkpoint.

Runs that must be real processes (killed, signalled, size-limited) are forked from a server that has already imported
embedtrain (helpers.processes.forked_train): each start costs under a second instead of a fresh interpreter's ten.
"""

import json
import os
import random
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from helpers.processes import forked_train, logged_steps, tiny_recipe
from safetensors import safe_open
from safetensors.torch import load_file
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.engine.lock import LOCK_FILE
from embedtrain.errors import ExitCode

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

runner = CliRunner()
STEPS = 40  # ~1.5 s of training on the tiny model; save_steps 2, so a kill can land in a checkpoint write often
CHAIN_STEPS = 200  # more than the chain of kills can get through: each random kill lets at most 8 steps pass


def reference_weights(directory: Path, model: Path, data: Path, steps: int) -> dict[str, torch.Tensor]:
    """Final weights of the uninterrupted run, in a forked process like the interrupted ones (same threads)."""
    recipe = tiny_recipe(directory, model, data, max_steps=steps, save_steps=2)
    process = forked_train(recipe, directory / "log")
    process.join(300)
    assert process.exitcode == 0, (directory / "log").read_text()
    return load_file(directory / "run" / "final" / "model.safetensors")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_checkpoint_with_dropout, sts_csv) -> dict[str, torch.Tensor]:
    return reference_weights(tmp_path_factory.mktemp("reference"), tiny_checkpoint_with_dropout, sts_csv, STEPS)


def assert_same_weights(run: Path, expected: dict[str, torch.Tensor]) -> None:
    actual = load_file(run / "final" / "model.safetensors")
    assert actual.keys() == expected.keys()
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name  # bit-identical


def assert_every_published_checkpoint_complete(run: Path) -> None:
    """What resume could pick: every checkpoint-N folder whole (its files readable), whatever a kill interrupted."""
    for checkpoint in (run / "checkpoints").glob("checkpoint-*"):
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        assert checkpoint.name == f"checkpoint-{state['step']:07d}"
        for path in [checkpoint / "state" / "model.safetensors", checkpoint / "model" / "model.safetensors"]:
            with safe_open(str(path), framework="pt") as tensors:
                assert list(tensors.keys()), path
        assert (checkpoint / "state" / "optimizer.bin").exists()
        for path in (checkpoint / "state").iterdir():
            assert path.stat().st_size > 0, path


def finish(recipe: Path, log: Path) -> None:
    process = forked_train(recipe, log, "--resume")
    process.join(300)
    assert process.exitcode == 0, log.read_text()[-3000:]


# -- kill -9 ------------------------------------------------------------------------------------------------------


def kill_at_random_point(process, rng: random.Random, run: Path) -> None:
    """SIGKILL at a seeded random point: during start-up or resume (a random delay before the first new step), or
    after 1 to 8 new steps, counted in the run's log, so where the kills land does not depend on the machine's speed."""
    new_steps = rng.randint(0, 8)
    if new_steps == 0:
        process.join(rng.uniform(0.05, 0.7))
    else:
        target = logged_steps(run) + new_steps
        while process.is_alive() and logged_steps(run) < target:
            process.join(0.005)
    if process.is_alive():
        os.kill(process.pid, signal.SIGKILL)


def kill_during_checkpoint_write(process, checkpoints: Path) -> None:
    """SIGKILL as soon as a checkpoint's staging folder (or a checkpoint being replaced) appears."""
    while process.is_alive():
        if any(checkpoints.glob(".checkpoint-*")):
            os.kill(process.pid, signal.SIGKILL)
            return


@pytest.mark.slow
def test_kill_9_anywhere_then_resume_ends_exactly_like_an_uninterrupted_run(tmp_path, tiny_checkpoint_with_dropout,
                                                                          sts_csv):
    reference = reference_weights(tmp_path / "reference", tiny_checkpoint_with_dropout, sts_csv, CHAIN_STEPS)
    recipe = tiny_recipe(tmp_path, tiny_checkpoint_with_dropout, sts_csv, max_steps=CHAIN_STEPS, save_steps=2)
    run, log = tmp_path / "run", tmp_path / "log"
    rng = random.Random(18)
    kills, during_writes = 0, 0
    for attempt in range(40):  # one run dir, resumed after each kill
        if kills >= 20 and during_writes >= 5:
            break
        process = forked_train(recipe, log, "--resume")
        if attempt % 4 == 3:
            kill_during_checkpoint_write(process, run / "checkpoints")
        else:
            kill_at_random_point(process, rng, run)
        process.join(60)
        if process.exitcode == -signal.SIGKILL:
            kills += 1
            during_writes += attempt % 4 == 3
        else:  # it finished before the kill: nothing interrupted
            assert process.exitcode == 0, log.read_text()[-3000:]
        assert_every_published_checkpoint_complete(run)
    assert kills >= 20 and during_writes >= 5, (kills, during_writes)

    finish(recipe, log)
    assert_same_weights(run, reference)
    assert not list((run / "checkpoints").glob(".checkpoint-*"))  # the leftovers of killed writes are cleaned up
    assert "taking over the lock" in log.read_text()  # every kill -9 left its lock behind


# -- SIGTERM / SIGINT ---------------------------------------------------------------------------------------------


def signal_after_steps(recipe: Path, log: Path, run: Path, signum: int, steps: int) -> str:
    """Start (resuming), send `signum` once `steps` steps are logged; return the run's output."""
    log.write_text("")
    process = forked_train(recipe, log, "--resume")
    while logged_steps(run) < steps and process.is_alive():
        pass
    os.kill(process.pid, signum)
    process.join(60)
    output = log.read_text()
    assert process.exitcode == ExitCode.RUNTIME_FAILURE, output[-3000:]
    return output


def test_sigterm_and_sigint_checkpoint_the_current_step_and_resume_exactly(tmp_path, reference,
                                                                         tiny_checkpoint_with_dropout, sts_csv):
    recipe = tiny_recipe(tmp_path, tiny_checkpoint_with_dropout, sts_csv, max_steps=STEPS, save_steps=2)
    run, log = tmp_path / "run", tmp_path / "log"
    for signum, steps in ((signal.SIGTERM, 5), (signal.SIGINT, 20)):
        output = signal_after_steps(recipe, log, run, signum, steps)
        name = signal.Signals(signum).name
        assert f"stopped by {name}" in output and "--resume" in output, output[-3000:]
        newest = max((run / "checkpoints").glob("checkpoint-*"))
        stopped_at = json.loads((newest / "trainer_state.json").read_text())["step"]
        assert stopped_at == logged_steps(run) >= steps  # the checkpoint is of the step the signal interrupted
        assert f"after step {stopped_at}" in output
    finish(recipe, log)
    assert_same_weights(run, reference)


# -- a full disk --------------------------------------------------------------------------------------------------


def test_a_full_disk_while_saving_fails_cleanly_and_keeps_the_previous_checkpoint_and_final(
        tmp_path, tiny_checkpoint, sts_csv):
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=4, save_steps=2)
    run, log = tmp_path / "run", tmp_path / "log"
    finish(recipe, log)  # a finished run: checkpoints 2 and 4, final/
    final_before = (run / "final" / "model.safetensors").read_bytes()
    # Continued with every file capped below the size of a checkpoint's weights: the save at step 6 hits the limit.
    limit = (run / "checkpoints" / "checkpoint-0000004" / "state" / "model.safetensors").stat().st_size // 2
    log.write_text("")
    process = forked_train(recipe, log, "--resume", "--set", "training.max_steps=8", file_size_limit=limit)
    process.join(120)
    output = log.read_text()
    assert process.exitcode == ExitCode.RUNTIME_FAILURE, output[-3000:]
    assert "cannot write checkpoint 6" in output and "disk full" in output, output[-3000:]
    assert str(run / "checkpoints") in output
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-0000002", "checkpoint-0000004"]
    assert_every_published_checkpoint_complete(run)
    assert (run / "final" / "model.safetensors").read_bytes() == final_before


# -- a non-finite loss --------------------------------------------------------------------------------------------


def test_a_non_finite_loss_stops_naming_step_and_dataset_and_keeps_the_last_good_checkpoint(
        tmp_path, tiny_checkpoint, sts_csv):
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=2, save_steps=1)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    AcceleratorState._reset_state(reset_partial_state=True)
    # A scale beyond float32 makes CoSENT's logits infinite from step 3 on, the first step of the continued run.
    result = runner.invoke(app, ["train", str(recipe), "--resume", "--set", "losses.main.scale=1e39",
                                 "--set", "training.max_steps=6", "--set", "training.logging_steps=3"])
    assert result.exit_code == ExitCode.RUNTIME_FAILURE, result.output
    assert "dataset 'sts' became non-finite at step 3" in result.output, result.output
    assert "last good checkpoint is checkpoint-0000002" in result.output
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-0000001", "checkpoint-0000002"]
    assert_every_published_checkpoint_complete(tmp_path / "run")
    weights = load_file(checkpoints / "checkpoint-0000002" / "model" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


# -- two runs on one output directory -----------------------------------------------------------------------------


def test_a_second_run_on_the_same_output_dir_refuses_while_the_first_runs(tmp_path, tiny_checkpoint, sts_csv):
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=120)
    run = tmp_path / "run"
    first = forked_train(recipe, tmp_path / "first.log")
    while logged_steps(run) < 1 and first.is_alive():
        pass
    second = forked_train(recipe, tmp_path / "second.log", "--resume")
    second.join(60)
    refused = (tmp_path / "second.log").read_text()
    assert second.exitcode == ExitCode.INVALID_INPUT, refused[-3000:]
    assert "in use by another run" in refused and f"pid {first.pid}" in refused, refused[-3000:]
    assert first.is_alive()  # the refusal came while the first ran
    first.join(120)
    assert first.exitcode == 0, (tmp_path / "first.log").read_text()[-3000:]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 121))  # the first run's log alone, not interleaved
    assert not (run / LOCK_FILE).exists()  # released at exit


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, tiny_checkpoint, sts_csv, caplog):
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=1)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "run").mkdir()
    holder = {"pid": dead.pid, "host": socket.gethostname(), "started": "2020-01-01 00:00:00"}
    (tmp_path / "run" / LOCK_FILE).write_text(json.dumps(holder))
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 0, result.output
    assert "taking over the lock" in caplog.text and f"pid {dead.pid}" in caplog.text
    assert not (tmp_path / "run" / LOCK_FILE).exists()


# -- a corrupt newest checkpoint ----------------------------------------------------------------------------------


@pytest.mark.parametrize("damaged", ["state/model.safetensors", "state/optimizer.bin", "model/model.safetensors"])
def test_resume_falls_back_from_a_corrupt_newest_checkpoint(tmp_path, tiny_checkpoint, sts_csv, damaged, caplog):
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv, max_steps=4, save_steps=2)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    AcceleratorState._reset_state(reset_partial_state=True)
    truncated = tmp_path / "run" / "checkpoints" / "checkpoint-0000004" / damaged
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])  # as a disk that filled up
    result = runner.invoke(app, ["train", str(recipe), "--resume", "--set", "training.max_steps=6"])
    assert result.exit_code == 0, result.output
    assert "checkpoint-0000004 cannot be read" in caplog.text, caplog.text
    assert "resuming at step 2 of 6" in result.output

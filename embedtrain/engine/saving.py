"""What a run writes of its model, on every process together: checkpoints (written atomically, read back by --resume,
the best one tracked) and the final model.

Under FSDP2 and ZeRO-3 each process holds only its shards of the weights: the whole state dict comes from
`accelerator.get_state_dict`, a collective, so every process calls the functions here at the same point.
"""

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from embedtrain.engine.checkpoint import (
    STATE_FILE,
    CheckpointManager,
    TrainerState,
    as_write_error,
    check_safetensors,
    fill_optimizer_state,
    name_or_none,
    write_failure,
)
from embedtrain.engine.run_files import FINAL
from embedtrain.engine.training_module import Model
from embedtrain.engine.whole_weights import holding
from embedtrain.errors import TrainingError
from embedtrain.models import save_model

logger = logging.getLogger(__name__)

Evaluation = tuple[int, dict[str, float]]
"""(step, metrics) of an evaluation."""


def on_any_process(accelerator: Accelerator, flag: bool) -> bool:
    """Whether `flag` is set on any process (a collective: every process must call it)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.reduce(torch.tensor(float(flag), device=accelerator.device), "sum").item())


def lower_is_better(metric: str) -> bool:
    return metric.endswith("_loss")


def save_whole_model(model: Model, directory: Path, weights: dict[str, Tensor]) -> None:
    """`model` in `directory`, written from `weights`, the prepared module's whole state dict
    (`accelerator.get_state_dict`): under FSDP2 and ZeRO-3 the model itself holds only this process's shards."""
    with holding(model, weights, prefix="model."):
        save_model(model, directory)


class CheckpointSaving:
    """Checkpoints of a run: written (atomically, with the best one tracked and kept) and read back on resume."""

    def __init__(self, accelerator: Accelerator, checkpoints: CheckpointManager,
                 metric_for_best_model: str | None) -> None:
        self.accelerator, self.checkpoints = accelerator, checkpoints
        self.metric_for_best_model = metric_for_best_model

    def save(self, state: TrainerState, latest_evaluation: Evaluation, prepared: nn.Module,
             optimizer: torch.optim.Optimizer) -> Path | None:
        """Checkpoint `state.step`: the model of `prepared` (the TrainingModule as `accelerator.prepare` returned it),
        accelerate's state (optimizer, scheduler, RNG) and `state`, which first learns whether `latest_evaluation`
        makes this checkpoint the best. The published checkpoint on the main process, None on the others;
        TrainingError, on every process, if any process fails to write its part."""
        accelerator, step = self.accelerator, state.step
        staging = self.checkpoints.staging_path(step)
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        accelerator.wait_for_everyone()
        if accelerator.is_fsdp2:
            fill_optimizer_state(optimizer.optimizer)  # the torch optimizer accelerate's wraps
        weights = accelerator.get_state_dict(prepared)  # every process: it gathers sharded parameters
        # Every process, from the same metrics (an evaluation's are the same on every process): all must agree on
        # whether final/ is the best checkpoint's, for only the others would gather the weights for it (save_final).
        self._track_best(state, latest_evaluation)
        model = accelerator.unwrap_model(prepared).model
        error = self._write(staging, state, model, weights)
        # Every process learns whether any write failed (and this is the barrier before publishing: every process's
        # RNG state is written by then), so that all stop together instead of waiting for each other.
        if on_any_process(accelerator, error is not None):
            if accelerator.is_main_process:
                shutil.rmtree(staging, ignore_errors=True)  # nothing half-written stays behind
            raise TrainingError(write_failure(f"checkpoint {step}", self.checkpoints.root, error)
                                + f"; the previous checkpoint ({name_or_none(self.checkpoints.latest())}) is intact: "
                                  f"free space and continue with --resume")
        if not accelerator.is_main_process:
            return None
        path = self.checkpoints.publish(step)
        best = self.checkpoints.root / state.best_checkpoint if state.best_checkpoint else None
        self.checkpoints.rotate(keep=best)
        return path

    def _write(self, staging: Path, state: TrainerState, model: Model, weights: dict[str, Tensor]) -> OSError | None:
        """This process's part of a checkpoint into `staging` (`weights`: the whole model's, see save_whole_model);
        the error if the disk is full or not writable."""
        try:
            self.accelerator.save_state(str(staging / "state"))
            if self.accelerator.is_main_process:
                save_whole_model(model, staging / "model", weights)
                state.save(staging / STATE_FILE)  # written last: its presence marks a complete checkpoint
        except Exception as error:
            return as_write_error(error)
        return None

    def _track_best(self, state: TrainerState, latest_evaluation: Evaluation) -> None:
        """At a checkpoint: is the evaluation of this step the best so far? (Only checkpoints can be kept.)"""
        name = self.metric_for_best_model
        step, metrics = latest_evaluation
        if name is None or step != state.step or name not in metrics:
            return
        value = metrics[name]
        best = state.best_metric
        if best is None or (value < best if lower_is_better(name) else value > best):
            state.best_metric = value
            state.best_checkpoint = self.checkpoints.path_for(state.step).name
            state.best_metrics = metrics

    def load_latest(self) -> tuple[Path, TrainerState] | None:
        """For --resume: the newest checkpoint that can be read, loaded into accelerate's state, and its TrainerState;
        None when there is no checkpoint; TrainingError when none can be read."""
        self.checkpoints.remove_partial()
        candidates = self.checkpoints.completed()
        if not candidates:
            logger.warning("--resume: no checkpoint in %s; starting from scratch", self.checkpoints.root)
            return None
        for checkpoint in reversed(candidates):  # newest first; a corrupt one falls back to the one before
            try:
                return checkpoint, self._load(checkpoint)
            except Exception as error:  # a truncated file raises whatever its reader raises (safetensors, pickle, json)
                logger.warning("--resume: checkpoint %s cannot be read (%s: %s); falling back to the previous one",
                               checkpoint, type(error).__name__, error)
        raise TrainingError(f"--resume: no checkpoint in {self.checkpoints.root} can be read (see the warnings above); "
                            f"choose another output directory to train from scratch")

    def _load(self, checkpoint: Path) -> TrainerState:
        state = TrainerState.load(checkpoint / STATE_FILE)
        check_safetensors(checkpoint / "model")  # accelerate reads state/, not the model copy that load_best uses
        self.accelerator.load_state(str(checkpoint / "state"))
        return state


def save_final(accelerator: Accelerator, output_dir: Path, prepared: nn.Module, best_checkpoint: Path | None,
               checkpoints: CheckpointManager, describe: Callable[[Path], None] | None) -> Path:
    """Write output_dir/final atomically: the model of `best_checkpoint` when given, else the model of `prepared` as
    trained; `describe(folder)` then adds to it (the model card). TrainingError, on every process, if it fails."""
    final = output_dir / FINAL
    error = None
    # Every process: gathering sharded parameters is a collective. Not needed when final/ is the best checkpoint's.
    weights = {} if best_checkpoint else accelerator.get_state_dict(prepared)
    if accelerator.is_main_process:
        staging = output_dir / ".final.partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            if best_checkpoint:
                shutil.copytree(best_checkpoint / "model", staging)
            else:
                save_whole_model(accelerator.unwrap_model(prepared).model, staging, weights)
            if describe is not None:
                describe(staging)
        except Exception as raised:
            error = as_write_error(raised)
            shutil.rmtree(staging, ignore_errors=True)
        else:
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
    if on_any_process(accelerator, error is not None):
        raise TrainingError(write_failure("the final model", output_dir, error)
                            + f"; the checkpoints ({name_or_none(checkpoints.latest())}) are intact: free "
                              f"space and continue with --resume")
    accelerator.wait_for_everyone()
    return final

"""The training loop, on accelerate: one code path for CPU, one GPU and `accelerate launch` with many processes."""

import contextlib
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import send_to_device, set_seed
from torch import Tensor, nn

from embedtrain.card import environment
from embedtrain.data.training_data import Batch, Collator, PreparedDataset, TextCollator, eval_batches
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
from embedtrain.engine.emissions import EmissionsMeter
from embedtrain.engine.gradient_sync import average_gradients, replays_backward
from embedtrain.engine.loaders import TrainingLoader, build_training_loader
from embedtrain.engine.loss_tracking import FirstNonFinite, LossWindow
from embedtrain.engine.manifest import RunRecord, checkpoint_step
from embedtrain.engine.metrics_log import MetricsLog
from embedtrain.engine.observer import TrainingObserver
from embedtrain.engine.optim import build_optimizer, build_scheduler, warmup_steps
from embedtrain.engine.preemption import PreemptionSignals, RunInterrupted
from embedtrain.engine.run_files import FINAL, METRICS_LOG
from embedtrain.engine.trackers import build_trackers
from embedtrain.engine.whole_weights import holding, shards_parameters
from embedtrain.errors import TrainingError
from embedtrain.evaluation import Evaluator, embeddings_across_processes, same_on_every_process, shared_embeddings
from embedtrain.losses import EmbeddingLoss, total_loss
from embedtrain.models import SentenceEmbedder, save_model
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.modules.length_chunks import fix_forward_calls
from embedtrain.recipe.training import TrainingConfig, eval_loss_metric

logger = logging.getLogger(__name__)


Model = SentenceEmbedder | CrossEncoder


class TrainingModule(nn.Module):
    """The model and every loss in one module, so that one DDP wrapper covers all trainable parameters."""

    def __init__(self, model: Model, losses: dict[str, EmbeddingLoss], loss_of_dataset: dict[str, str]) -> None:
        super().__init__()
        self.model = model
        self.losses = nn.ModuleDict(losses)
        self.loss_of_dataset = loss_of_dataset

    def forward(self, batch: Batch | None = None, evaluate: Callable[[Model], dict[str, float]] | None = None):
        """The loss of `batch`; or, given `evaluate`, `evaluate(self.model)`: evaluation under FSDP2, whose root module
        gathers its own parameters (the embeddings, a pooler, a head) only inside its own forward call."""
        if evaluate is not None:
            return evaluate(self.model)
        return total_loss(self.losses[self.loss_of_dataset[batch["dataset"]]](self.model, batch["features"], batch["labels"]))

    def set_training_progress(self, step: int, total_steps: int) -> None:
        """Tell every loss how far training is (for scheduled loss terms, e.g. the SPLADE regulariser warm-up)."""
        for loss in self.losses.values():
            loss.set_training_progress(step, total_steps)


@dataclass
class TrainingResult:
    final_dir: Path
    metrics: dict[str, float]  # the evaluation of the model in final_dir (the best checkpoint's, when it is that one)
    steps: int
    train_seconds: float


def collator_for(model: Model) -> Collator | TextCollator:
    """Embedders' losses take tokenized features; a cross-encoder's losses take the raw texts, of which they build and
    tokenize their pairs."""
    return TextCollator() if isinstance(model, CrossEncoder) else Collator(model.tokenize)


def resolve_precision(precision: str) -> str:
    """Recipe precision -> accelerate's mixed_precision."""
    if precision == "auto":
        if not torch.cuda.is_available():
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": "no"}.get(precision, precision)


def build_accelerator(config: TrainingConfig) -> Accelerator:
    """The process's Accelerator, with the recipe's trackers (started later, by `trackers.start_trackers`, on the main
    process only). Create it before anything else asks accelerate about the processes."""
    return Accelerator(
        log_with=build_trackers(config) or None,
        mixed_precision=resolve_precision(config.precision),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        step_scheduler_with_optimizer=False,
        # Some parameters get no gradient in a step: the encoder's unused pooler head, and the loss parameters of
        # datasets other than the batch's. DDP must be told, as the reference's trainer does by default.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def evaluates_after(config: TrainingConfig, step: int, total_steps: int) -> bool:
    """Whether the trainer evaluates after optimizer step `step` of `total_steps` (0: before training): before
    training if asked, every eval_steps, and always at the end."""
    if step == 0:
        return config.eval_before_training
    return step == total_steps or bool(config.eval_steps) and step % config.eval_steps == 0


def checkpoints_after(config: TrainingConfig, step: int, total_steps: int) -> bool:
    """Whether the trainer writes a checkpoint after optimizer step `step`: every save_steps, and at the end when it
    saves at all (or must keep the best checkpoint)."""
    if step == total_steps:
        return bool(config.save_steps) or config.load_best_model_at_end
    return step > 0 and bool(config.save_steps) and step % config.save_steps == 0  # none before training


def lower_is_better(metric: str) -> bool:
    return metric.endswith("_loss")


@dataclass
class TrainingRun:
    """What the set-up hands the loop: the prepared optimizer, schedule and batches, and the run's length."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loader: TrainingLoader
    total_steps: int
    steps_per_epoch: int | None  # None for a stream
    warmup_steps: int


class Trainer:
    def __init__(self, *, accelerator: Accelerator, config: TrainingConfig, model: Model,
                 losses: dict[str, EmbeddingLoss], train_sets: dict[str, PreparedDataset],
                 eval_sets: dict[str, PreparedDataset], evaluators: list[Evaluator],
                 observer: TrainingObserver | None = None,
                 on_final_save: Callable[..., None] | None = None) -> None:
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.train_sets, self.eval_sets, self.evaluators = train_sets, eval_sets, evaluators
        self.observer = observer or TrainingObserver()
        # (final_dir, metrics, history, run=environment.TrainingRun): writes the model card
        self.on_final_save = on_final_save
        self.accelerator = accelerator
        self.module = TrainingModule(model, losses, {name: d.loss_name for name, d in train_sets.items() | eval_sets.items()})
        self.collator = collator_for(model)
        self.checkpoints = CheckpointManager(self.output_dir, config.save_total_limit)
        self.metrics_log = MetricsLog(self.output_dir / METRICS_LOG)
        self.state = TrainerState()
        self.latest_evaluation: tuple[int, dict[str, float]] = (-1, {})
        self.non_finite = FirstNonFinite(list(train_sets), accelerator.device)
        self.signals = PreemptionSignals()
        self.record: RunRecord | None = None
        self.optimizer: torch.optim.Optimizer | None = None  # prepared, by set_up

    @property
    def model(self) -> Model:
        return self.accelerator.unwrap_model(self.module).model

    def train(self, resume: bool = False, record: RunRecord | None = None) -> TrainingResult:
        """Train, evaluate and save final/. `record` (run.json) learns the steps, each checkpoint and the end."""
        self.record = record
        run = self.set_up()
        if resume:
            self._resume()
        emissions = EmissionsMeter(self.output_dir, self.config.project_name) if (
            self.config.track_emissions and self.accelerator.is_main_process) else None
        if emissions is not None:
            emissions.start()
        try:
            self._before_training(run)
            started = time.perf_counter()
            with self.signals:
                self._loop(run)
            train_seconds = time.perf_counter() - started

            metrics = self._evaluate()
            if checkpoints_after(self.config, self.state.step, run.total_steps):
                self._save_checkpoint()
            final_metrics, evaluated_at = self._final_model_metrics(metrics)
            seconds = time.perf_counter() - started
        finally:
            emissions_kg = emissions.stop() if emissions is not None else None  # a failed run stops measuring too
        facts = self._run_facts(seconds, emissions_kg)
        final_dir = self._save_final(final_metrics, facts)
        if record is not None:
            record.finished(final_dir, self.state.step, final_metrics, evaluated_at, facts.emissions_kg)
        self._notify("on_train_end", final_dir, metrics)
        return TrainingResult(final_dir, final_metrics, self.state.step, train_seconds)

    def _final_model_metrics(self, last: dict[str, float]) -> tuple[dict[str, float], int]:
        """The evaluation of the model final/ holds, and its step: the best checkpoint's when
        training.load_best_model_at_end picks it, else the last evaluation."""
        best = self.state.best_checkpoint
        if self.config.load_best_model_at_end and best:
            return self.state.best_metrics, checkpoint_step(best)
        return last, self.state.step

    def _run_facts(self, seconds: float, emissions_kg: float | None) -> environment.TrainingRun:
        """What the model card reports of the run (run.json records the same)."""
        processes = self.accelerator.num_processes
        machine = environment.hardware() + (f", {processes} processes" if processes > 1 else "")
        best = self.state.best_checkpoint
        return environment.TrainingRun(seconds=seconds, hardware=machine,
                                       best_step=checkpoint_step(best) if best else None, emissions_kg=emissions_kg)

    # -- set-up ----------------------------------------------------------------------------------------------

    def set_up(self) -> TrainingRun:
        """The optimizer, schedule and batches, prepared; writes nothing (a dry run stops here)."""
        config, accelerator = self.config, self.accelerator
        if shards_parameters(accelerator):
            self._check_sharding()
        optimizer = build_optimizer(self.module, config, self.module.model)
        self.module, optimizer = accelerator.prepare(self.module, optimizer)
        self.optimizer = optimizer
        loader = build_training_loader(accelerator, self.train_sets, config, self.collator)
        steps_per_epoch = (None if loader.batches_per_epoch is None
                           else max(1, math.ceil(loader.batches_per_epoch / config.gradient_accumulation_steps)))
        total_steps = config.max_steps or config.epochs * steps_per_epoch
        scheduler = build_scheduler(optimizer, config, total_steps)
        accelerator.register_for_checkpointing(scheduler)
        return TrainingRun(optimizer, scheduler, loader, total_steps, steps_per_epoch, warmup_steps(config, total_steps))

    def _check_sharding(self) -> None:
        """Under FSDP or ZeRO-3 each call of a sharded module gathers its parameters from every process, so all must
        run the same forward calls in the same order: TrainingError for what would not, and length chunking turned
        off where its chunk count depends on each process's batch."""
        kind = self.accelerator.distributed_type.value
        if replays_backward(self.module.losses):
            raise TrainingError(f"a cached (GradCache) loss under {kind}: its backward pass replays the model outside "
                                f"the sharded module's hooks; use the uncached loss (with "
                                f"training.gradient_checkpointing for memory) or DDP (configs/multi-gpu.yaml)")
        if len(self.train_sets) > 1:
            raise TrainingError(f"{len(self.train_sets)} training datasets under {kind}: the processes would train "
                                f"batches of different datasets (different losses and columns, so different forward "
                                f"calls) at the same step; train one dataset, or use DDP (configs/multi-gpu.yaml)")
        for name in fix_forward_calls(self.module):
            if self.accelerator.is_main_process:
                logger.info("training.length_chunking: off for %s under %s: it runs a batch in as many forward calls "
                            "as its lengths need, which differ between processes, and every process must make the "
                            "same calls (packed encoders, BERT-style, keep length-aware execution)", name, kind)

    def _before_training(self, run: TrainingRun) -> None:
        # Scheduled loss terms start where the run stands, for an evaluation before the first batch too.
        self.accelerator.unwrap_model(self.module).set_training_progress(self.state.step, run.total_steps)
        if self.state.step == 0:
            if evaluates_after(self.config, 0, run.total_steps):
                self._evaluate()
            # As the reference trainer: seed right before training, then each epoch's DataLoader iterator draws its
            # base seed from the global RNG. The same state at the first batch gives the same dropout masks.
            set_seed(self.config.seed)
        self._notify("on_train_start", run.total_steps, self.state.step)
        if self.record is not None:
            self.record.training_started(self.state.step, run.total_steps)
        self.module.train()  # from_pretrained leaves models in eval mode (dropout off)

    # -- the loop --------------------------------------------------------------------------------------------

    def _loop(self, run: TrainingRun) -> None:
        config, accelerator, state = self.config, self.accelerator, self.state
        training_module = accelerator.unwrap_model(self.module)
        # Cached losses back-propagate outside DDP's view (engine.gradient_sync): their steps sync by hand.
        sync_by_hand = accelerator.num_processes > 1 and replays_backward(training_module.losses)
        window = self._new_window()
        grad_norm = None
        while state.step < run.total_steps:
            run.loader.set_epoch(state.epoch)
            for batch in self._epoch_batches(run.loader):
                # Every batch of an accumulated step sees the same progress: the steps completed before it (the
                # reference's `global_step` at `on_step_begin`); a resumed run continues from its restored step.
                training_module.set_training_progress(state.step, run.total_steps)
                with accelerator.accumulate(self.module):
                    with accelerator.no_sync(self.module) if sync_by_hand else contextlib.nullcontext():
                        loss = self.module(batch)
                        accelerator.backward(loss)
                    if sync_by_hand and accelerator.sync_gradients:
                        average_gradients(self.module, accelerator)
                    if accelerator.sync_gradients and config.max_grad_norm is not None:
                        grad_norm = accelerator.clip_grad_norm_(self.module.parameters(), config.max_grad_norm)
                    run.optimizer.step()
                    run.optimizer.zero_grad(set_to_none=True)
                window.add(batch["dataset"], loss.detach(), batch["diagnostics"], _rows(batch))
                self.non_finite.add(loss.detach(), state.step + 1, batch["dataset"])
                state.batches_in_epoch += 1
                if not accelerator.sync_gradients:
                    continue
                run.scheduler.step()
                state.step += 1
                self._notify("on_step", state.step)
                at_end = state.step >= run.total_steps
                if state.step % config.logging_steps == 0 or at_end:
                    self._log(window, run.scheduler.get_last_lr()[0], grad_norm, run.steps_per_epoch)
                    window = self._new_window()
                if at_end:
                    return  # the final evaluation and checkpoint follow the loop
                if evaluates_after(config, state.step, run.total_steps):
                    self._evaluate()
                saved = checkpoints_after(config, state.step, run.total_steps)
                if saved:
                    self._save_checkpoint()
                if self._stop_requested():
                    self._stop_for_preemption(already_saved=saved)
            state.epoch += 1
            state.batches_in_epoch = 0

    def _epoch_batches(self, loader: TrainingLoader) -> Iterable[Batch]:
        """This epoch's batches; resumed inside an epoch, the same batches minus those already trained on."""
        skip = self.state.batches_in_epoch
        if not skip:
            return loader.epoch_batches()
        return _with_rng_state_kept(loader.epoch_batches(skip))

    # -- reporting -------------------------------------------------------------------------------------------

    def _new_window(self) -> LossWindow:
        return LossWindow(list(self.train_sets), self.accelerator.device)

    def _notify(self, hook: str, *args) -> None:
        if self.accelerator.is_main_process:
            getattr(self.observer, hook)(*args)

    def _log(self, window: LossWindow, learning_rate: float, grad_norm: Tensor | None,
             steps_per_epoch: int | None) -> None:
        self._raise_if_non_finite()
        losses = window.means(self.accelerator)  # one host sync per logging step, not per step
        epoch = self.state.epoch if steps_per_epoch is None else round(self.state.step / steps_per_epoch, 4)
        record = {"step": self.state.step, "epoch": epoch,
                  "loss": losses.pop("all"), "learning_rate": learning_rate}
        if len(self.train_sets) > 1:
            record |= {f"{name}_loss": value for name, value in losses.items()}
        if grad_norm is not None:
            record["grad_norm"] = float(grad_norm)
        record |= window.diagnostic_means()
        record["samples_per_second"] = round(window.samples_per_second(self.accelerator), 3)
        if self.accelerator.is_main_process:
            self.metrics_log.write(record)
        self._report(record)
        self._notify("on_log", record)

    def _report(self, record: dict) -> None:
        """A metrics.jsonl record to the trackers (accelerate logs on the main process only; none: nothing)."""
        self.accelerator.log({name: value for name, value in record.items() if name != "step"}, step=record["step"])

    # -- evaluation ------------------------------------------------------------------------------------------

    def _evaluate(self) -> dict[str, float]:
        """Evaluators and eval losses, on every process: each embeds a share of the evaluators' texts and computes
        the loss of a share of the eval batches; every process gets the main process's metrics (so that all agree on
        the best checkpoint), which the main process writes."""
        metrics: dict[str, float] = {}
        if self.evaluators or self.eval_sets:
            module = self.accelerator.unwrap_model(self.module)
            module.eval()
            try:
                if self.accelerator.is_fsdp2:
                    with torch.no_grad():
                        metrics = self.module(evaluate=self._run_evaluators_sharded)
                else:
                    metrics = self._run_evaluators(module.model)
                with torch.no_grad():
                    for name, dataset in self.eval_sets.items():
                        metrics[eval_loss_metric(name)] = self._eval_loss(module, dataset)
            finally:
                module.train()
            if self.accelerator.is_main_process:
                self.metrics_log.write({"step": self.state.step, **metrics})
            self._report({"step": self.state.step, **metrics})
            self._notify("on_evaluate", self.state.step, metrics)
        self.latest_evaluation = (self.state.step, metrics)
        self.accelerator.wait_for_everyone()
        return metrics

    def _run_evaluators_sharded(self, model: Model) -> dict[str, float]:
        """`_run_evaluators` under FSDP2, called inside the root module's forward. Models embed under
        torch.inference_mode, and FSDP2 cannot later write into the buffers of a unit whose parameters were first
        gathered there ("inplace update to inference tensor"): every unit gathers them here first, outside it."""
        from torch.distributed.fsdp import FSDPModule

        for unit in self.module.modules():
            if isinstance(unit, FSDPModule):
                unit.unshard()
        return self._run_evaluators(model)

    def _run_evaluators(self, model: Model) -> dict[str, float]:
        metrics: dict[str, float] = {}
        # shared_embeddings: evaluators that share texts embed them once
        with shared_embeddings(), embeddings_across_processes():
            for evaluator in self.evaluators:
                metrics |= evaluator(model)
            return same_on_every_process(metrics)

    def _eval_loss(self, module: TrainingModule, dataset: PreparedDataset) -> float:
        """The mean loss per row over the eval set. With N processes, process r takes batches r, r + N, ... (the
        batches one process would make, so in-batch negatives are the same) and the sums are added up; each runs as
        many batches (one short of batches repeats the last, uncounted), as a sharded model (FSDP, ZeRO-3) needs."""
        accelerator = self.accelerator
        processes, rank = accelerator.num_processes, accelerator.process_index
        total, count, mine, batch = 0.0, 0, 0, None
        for index, batch in enumerate(eval_batches(dataset, self.config.batch_size, self.collator)):
            if index % processes == rank:
                size = _rows(batch)
                total += self._batch_loss(module, batch) * size
                count += size
                mine += 1
        if processes > 1:
            if batch is not None and mine < -(-(index + 1) // processes):
                self._batch_loss(module, batch)
            sums = accelerator.reduce(torch.tensor([total, count], dtype=torch.float64, device=accelerator.device), "sum")
            total, count = float(sums[0]), int(sums[1])
        return total / count

    def _batch_loss(self, module: TrainingModule, batch: Batch) -> float:
        # send_to_device leaves non-tensors (a router's `task`, a cross-encoder's texts and list labels) as they are.
        batch["features"] = send_to_device(batch["features"], self.accelerator.device)
        batch["labels"] = send_to_device(batch["labels"], self.accelerator.device)
        return float(module(batch))

    def _track_best(self) -> None:
        """At a checkpoint: is the evaluation of this step the best so far? (Only checkpoints can be kept.)"""
        name = self.config.metric_for_best_model
        step, metrics = self.latest_evaluation
        if name is None or step != self.state.step or name not in metrics:
            return
        value = metrics[name]
        best = self.state.best_metric
        if best is None or (value < best if lower_is_better(name) else value > best):
            self.state.best_metric = value
            self.state.best_checkpoint = self.checkpoints.path_for(self.state.step).name
            self.state.best_metrics = metrics

    # -- checkpoints -----------------------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        self._raise_if_non_finite()  # never publish weights trained on a non-finite loss
        accelerator, step = self.accelerator, self.state.step
        staging = self.checkpoints.staging_path(step)
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        accelerator.wait_for_everyone()
        if accelerator.is_fsdp2:
            fill_optimizer_state(self.optimizer.optimizer)  # the torch optimizer accelerate's wraps
        weights = accelerator.get_state_dict(self.module)  # every process: it gathers sharded parameters
        error = self._write_checkpoint(staging, weights)
        # Every process learns whether any write failed (and this is the barrier before publishing: every process's
        # RNG state is written by then), so that all stop together instead of waiting for each other.
        if self._on_any_process(error is not None):
            if accelerator.is_main_process:
                shutil.rmtree(staging, ignore_errors=True)  # nothing half-written stays behind
            raise TrainingError(write_failure(f"checkpoint {step}", self.checkpoints.root, error)
                                + f"; the previous checkpoint ({name_or_none(self.checkpoints.latest())}) is intact: "
                                  f"free space and continue with --resume")
        if accelerator.is_main_process:
            path = self.checkpoints.publish(step)
            best = self.checkpoints.root / self.state.best_checkpoint if self.state.best_checkpoint else None
            self.checkpoints.rotate(keep=best)
            if self.record is not None:
                self.record.checkpoint_written(path, self.state)
            self._notify("on_checkpoint", path)
        accelerator.wait_for_everyone()

    def _write_checkpoint(self, staging: Path, weights: dict[str, Tensor]) -> OSError | None:
        """This process's part of a checkpoint into `staging` (`weights`: the whole model's, see _save_model); the
        error if the disk is full or not writable."""
        try:
            self.accelerator.save_state(str(staging / "state"))
            if self.accelerator.is_main_process:
                self._track_best()
                self._save_model(staging / "model", weights)
                self.state.save(staging / STATE_FILE)  # written last: its presence marks a complete checkpoint
        except Exception as error:
            return as_write_error(error)
        return None

    def _on_any_process(self, flag: bool) -> bool:
        """Whether `flag` is set on any process (a collective: every process must call it)."""
        if self.accelerator.num_processes == 1:
            return flag
        return bool(self.accelerator.reduce(torch.tensor(float(flag), device=self.accelerator.device), "sum").item())

    def _stop_requested(self) -> bool:
        """A stop signal reached any process (a scheduler may signal only some): all stop at the same step."""
        return self._on_any_process(self.signals.received is not None)

    def _stop_for_preemption(self, already_saved: bool) -> None:
        if not already_saved:
            self._save_checkpoint()
        received = self.signals.received.name if self.signals.received else "a stop signal (on another process)"
        raise RunInterrupted(f"stopped by {received} after step {self.state.step}, saved in "
                             f"{self.checkpoints.path_for(self.state.step)}; continue with the same command and --resume")

    def _raise_if_non_finite(self) -> None:
        """Stop on the first non-finite training loss, naming its step and dataset (one host sync)."""
        found = self.non_finite.first(self.accelerator)
        if found is None:
            return
        step, dataset = found
        raise TrainingError(
            f"the training loss of dataset {dataset!r} became non-finite at step {step} (stopped at step "
            f"{self.state.step}); the last good checkpoint is {name_or_none(self.checkpoints.latest())}. Lower the "
            f"learning rate, enable gradient clipping (training.max_grad_norm) or use fp32/bf16")

    def _resume(self) -> None:
        self.checkpoints.remove_partial()
        candidates = self.checkpoints.completed()
        if not candidates:
            logger.warning("--resume: no checkpoint in %s; starting from scratch", self.checkpoints.root)
            return
        for checkpoint in reversed(candidates):  # newest first; a corrupt one falls back to the one before
            try:
                self._load_checkpoint(checkpoint)
            except Exception as error:  # a truncated file raises whatever its reader raises (safetensors, pickle, json)
                logger.warning("--resume: checkpoint %s cannot be read (%s: %s); falling back to the previous one",
                               checkpoint, type(error).__name__, error)
                continue
            if self.accelerator.is_main_process:
                self.metrics_log.truncate_after(self.state.step)
            logger.info("resumed from %s (step %d)", checkpoint, self.state.step)
            return
        raise TrainingError(f"--resume: no checkpoint in {self.checkpoints.root} can be read (see the warnings above); "
                            f"choose another output directory to train from scratch")

    def _load_checkpoint(self, checkpoint: Path) -> None:
        state = TrainerState.load(checkpoint / STATE_FILE)
        check_safetensors(checkpoint / "model")  # accelerate reads state/, not the model copy that load_best uses
        self.accelerator.load_state(str(checkpoint / "state"))
        self.state = state

    def _save_final(self, metrics: dict[str, float], facts: environment.TrainingRun) -> Path:
        """Write output_dir/final atomically: the best checkpoint's model, or the model as trained."""
        final = self.output_dir / FINAL
        error = None
        # Every process: gathering sharded parameters is a collective. Not needed when final/ is the best checkpoint's.
        weights = {} if self._final_is_best_checkpoint() else self.accelerator.get_state_dict(self.module)
        if self.accelerator.is_main_process:
            staging = self.output_dir / ".final.partial"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                self._write_final(staging, metrics, facts, weights)
            except Exception as raised:
                error = as_write_error(raised)
                shutil.rmtree(staging, ignore_errors=True)
            else:
                shutil.rmtree(final, ignore_errors=True)
                staging.rename(final)
        if self._on_any_process(error is not None):
            raise TrainingError(write_failure("the final model", self.output_dir, error)
                                + f"; the checkpoints ({name_or_none(self.checkpoints.latest())}) are intact: free "
                                  f"space and continue with --resume")
        self.accelerator.wait_for_everyone()
        return final

    def _final_is_best_checkpoint(self) -> bool:
        return bool(self.config.load_best_model_at_end and self.state.best_checkpoint)

    def _write_final(self, staging: Path, metrics: dict[str, float], facts: environment.TrainingRun,
                     weights: dict[str, Tensor]) -> None:
        """`metrics`: the evaluation of the model written (see _final_model_metrics); `weights`: see _save_model."""
        if self._final_is_best_checkpoint():
            shutil.copytree(self.checkpoints.root / self.state.best_checkpoint / "model", staging)
        else:
            self._save_model(staging, weights)
        if self.on_final_save is not None:
            self.on_final_save(staging, metrics, self.metrics_log.read(), run=facts)

    def _save_model(self, directory: Path, weights: dict[str, Tensor]) -> None:
        """The model in `directory`, written from `weights`, the prepared module's whole state dict
        (`accelerator.get_state_dict`): under FSDP2 and ZeRO-3 the model itself holds only this process's shards."""
        with holding(self.model, weights, prefix="model."):
            save_model(self.model, directory)


def _rows(batch: Batch) -> int:
    first = batch["features"][0]
    if not isinstance(first, dict):  # a cross-encoder's raw texts
        return len(first)
    return len(first["offsets"] if "offsets" in first else first["input_ids"])  # static models: flat input_ids


def _with_rng_state_kept(batches: Iterable[Batch]) -> Iterator[Batch]:
    """`batches` of a resumed epoch, with the RNG state as the checkpoint left it once their iterator exists.

    Creating an epoch's iterator draws the DataLoader's base seed from the global RNG; the checkpoint's state
    already counts that draw, made by the interrupted run, so it is put back after the iterator has drawn again.
    """
    cpu, devices = torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restored() -> Iterator[Batch]:
        iterator = iter(batches)
        first = next(iterator, None)  # creates the iterator (a resumed epoch may have no batch left)
        torch.set_rng_state(cpu)
        if devices is not None:
            torch.cuda.set_rng_state_all(devices)
        if first is not None:
            yield first
            yield from iterator

    return restored()

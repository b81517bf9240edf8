"""The training loop, on accelerate: one code path for CPU, one GPU and `accelerate launch` with many processes."""

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch import Tensor

from embedtrain.card import environment
from embedtrain.data.training_data import Batch, Collator, PreparedDataset, TextCollator
from embedtrain.engine.checkpoint import CheckpointManager, TrainerState, name_or_none
from embedtrain.engine.emissions import EmissionsMeter
from embedtrain.engine.evaluation_pass import EvaluationPass
from embedtrain.engine.gradient_sync import average_gradients, replays_backward
from embedtrain.engine.loaders import TrainingLoader, build_training_loader
from embedtrain.engine.loss_tracking import FirstNonFinite, LossWindow
from embedtrain.engine.manifest import RunRecord, checkpoint_step
from embedtrain.engine.metrics_log import MetricsLog
from embedtrain.engine.observer import TrainingObserver
from embedtrain.engine.optim import build_optimizer, build_scheduler, warmup_steps
from embedtrain.engine.preemption import PreemptionSignals, RunInterrupted
from embedtrain.engine.run_files import METRICS_LOG
from embedtrain.engine.saving import CheckpointSaving, on_any_process, save_final
from embedtrain.engine.trackers import build_trackers
from embedtrain.engine.training_module import Model, TrainingModule, batch_rows
from embedtrain.engine.whole_weights import shards_parameters
from embedtrain.errors import TrainingError
from embedtrain.evaluation import Evaluator
from embedtrain.losses import EmbeddingLoss
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.modules.length_chunks import fix_forward_calls
from embedtrain.recipe.training import TrainingConfig

logger = logging.getLogger(__name__)


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
        self.saving = CheckpointSaving(accelerator, self.checkpoints, config.metric_for_best_model)
        self.evaluation = EvaluationPass(accelerator, evaluators, eval_sets, config.batch_size, self.collator)
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
                window.add(batch["dataset"], loss.detach(), batch["diagnostics"], batch_rows(batch))
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

    # -- evaluation and checkpoints --------------------------------------------------------------------------

    def _evaluate(self) -> dict[str, float]:
        """The evaluation pass on every process; every process gets the main process's metrics (so that all agree on
        the best checkpoint), which the main process writes."""
        metrics: dict[str, float] = {}
        if self.evaluation.has_work():
            metrics = self.evaluation.run(self.module)
            if self.accelerator.is_main_process:
                self.metrics_log.write({"step": self.state.step, **metrics})
            self._report({"step": self.state.step, **metrics})
            self._notify("on_evaluate", self.state.step, metrics)
        self.latest_evaluation = (self.state.step, metrics)
        self.accelerator.wait_for_everyone()
        return metrics

    def _save_checkpoint(self) -> None:
        self._raise_if_non_finite()  # never publish weights trained on a non-finite loss
        path = self.saving.save(self.state, self.latest_evaluation, self.module, self.optimizer)
        if path is not None:  # the main process
            if self.record is not None:
                self.record.checkpoint_written(path, self.state)
            self._notify("on_checkpoint", path)
        self.accelerator.wait_for_everyone()

    def _stop_requested(self) -> bool:
        """A stop signal reached any process (a scheduler may signal only some): all stop at the same step."""
        return on_any_process(self.accelerator, self.signals.received is not None)

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
        found = self.saving.load_latest()
        if found is None:
            return
        checkpoint, self.state = found
        if self.accelerator.is_main_process:
            self.metrics_log.truncate_after(self.state.step)
        logger.info("resumed from %s (step %d)", checkpoint, self.state.step)

    def _save_final(self, metrics: dict[str, float], facts: environment.TrainingRun) -> Path:
        """Write output_dir/final: the best checkpoint's model, or the model as trained; `metrics`: the evaluation of
        the model written (see _final_model_metrics), for its card."""
        best = self.state.best_checkpoint
        best_checkpoint = self.checkpoints.root / best if self.config.load_best_model_at_end and best else None
        describe = None if self.on_final_save is None else (
            lambda folder: self.on_final_save(folder, metrics, self.metrics_log.read(), run=facts))
        return save_final(self.accelerator, self.output_dir, self.module, best_checkpoint, self.checkpoints, describe)


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

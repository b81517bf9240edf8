"""`embedtrain train --dry-run`: every check of a real run, through the same code path up to the trainer's set-up, then
the plan of the run instead of the run. Nothing is written: the output directory is checked but not created.

The step counts and warm-up come from the trainer's own set-up (`Trainer.set_up`); the time per step and the peak
memory are an estimate from a few forward/backward passes on real batches, whose updates are thrown away.

Nothing is mined either: a dataset with `mine:` uses its cached mined rows when the output directory has them, else
stand-in rows of the shape mining writes, as many as it can write (`stand_in_rows`), and the plan says which.
"""

import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from embedtrain.data.source import public_name
from embedtrain.engine.hub_push import check_hub_push
from embedtrain.engine.mined_data import mining_caches, stand_in_rows
from embedtrain.engine.output_dir import check_output_dir
from embedtrain.engine.run import checked_data, prepare_trainer
from embedtrain.engine.trackers import check_trackers
from embedtrain.engine.trainer import Trainer, TrainingRun, build_accelerator, checkpoints_after, evaluates_after
from embedtrain.modules.length_chunks import length_chunking
from embedtrain.recipe.schema import Recipe
from embedtrain.recipe.training import TrainingConfig

MEASURED_BATCHES = 3  # the first is a warm-up; the others are timed


@dataclass(frozen=True)
class DatasetLine:
    name: str
    split: str  # train or eval
    loss: str
    rows: int | None  # None for a stream
    batches_per_epoch: int | None  # training datasets in memory only
    to_be_mined: bool = False  # rows and batches are the most mining can write (stand-in rows)


@dataclass(frozen=True)
class MiningLine:
    where: str  # datasets.train.<name>
    model: str  # the mining model, by its public name
    path: Path  # the cache file
    cached: bool  # the output directory holds the mined rows: a run reuses them


@dataclass(frozen=True)
class ModuleParameters:
    name: str  # e.g. model.0 (Transformer), loss main (CoSENTLoss)
    trainable: int
    frozen: int


@dataclass(frozen=True)
class TokenSample:
    """Tokens of the first batches: real (attention mask set) and as padded to each input's longest text."""

    batches: int
    real_tokens: int
    padded_tokens: int
    length_chunking: bool  # the encoder runs length-homogeneous chunks, skipping most of the padding

    @property
    def padding_share(self) -> float:
        return 1 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


@dataclass(frozen=True)
class StepEstimate:
    device: str
    seconds_per_step: float
    peak_memory_bytes: int | None
    memory_kind: str  # what the peak measures
    batches_timed: int


@dataclass(frozen=True)
class DryRunPlan:
    output_dir: Path
    datasets: list[DatasetLine]
    batch_size: int
    gradient_accumulation_steps: int
    num_processes: int
    batches_per_epoch: int | None  # per process; None for a stream
    steps_per_epoch: int | None
    epochs: int | None  # None when max_steps sets the length
    total_steps: int
    warmup_steps: int
    evaluation_steps: list[int]
    checkpoint_steps: list[int]
    parameters: list[ModuleParameters]
    tokens: TokenSample | None
    estimate: StepEstimate | None
    mining: list[MiningLine]


def dry_run(recipe: Recipe, *, resume: bool = False) -> DryRunPlan:
    """Check and build everything a run of `recipe` would, and describe the run; train nothing and write nothing."""
    check_trackers(recipe.training)
    check_hub_push(recipe.training.push_to_hub)
    accelerator = build_accelerator(recipe.training)
    output_dir = Path(recipe.training.output_dir)
    check_output_dir(output_dir, resume)  # reports a finished run there, but never creates the directory
    plan, tokenization = checked_data(recipe)
    mined, mining = {}, []
    for cache in mining_caches(plan.mining, output_dir):
        rows = cache.rows()
        mining.append(MiningLine(cache.step.where, public_name(cache.step.config.mine.model), cache.path,
                                 rows is not None))
        mined[cache.step.where] = rows if rows is not None else stand_in_rows(cache.step)
    trainer = prepare_trainer(recipe, plan, mined, tokenization, accelerator)
    run = trainer.set_up()
    config = recipe.training
    batches = _first_batches(trainer, run)
    stand_ins = {line.where for line in mining if not line.cached}
    return DryRunPlan(
        output_dir=output_dir, datasets=_datasets(trainer, run, stand_ins), batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, num_processes=accelerator.num_processes,
        batches_per_epoch=run.loader.batches_per_epoch, steps_per_epoch=run.steps_per_epoch,
        epochs=None if config.max_steps else config.epochs, total_steps=run.total_steps,
        warmup_steps=run.warmup_steps,
        evaluation_steps=(_steps_where(evaluates_after, config, run.total_steps)
                          if trainer.evaluators or trainer.eval_sets else []),
        checkpoint_steps=_steps_where(checkpoints_after, config, run.total_steps), parameters=parameter_counts(trainer),
        tokens=_token_sample(batches, _chunks_batches(config, accelerator.device, trainer.model)),
        estimate=_measure(trainer, run, batches),
        mining=mining,
    )


def _steps_where(happens_after, config: TrainingConfig, total_steps: int) -> list[int]:
    """The steps at which the trainer's own rule (`evaluates_after`, `checkpoints_after`) fires."""
    return [step for step in range(total_steps + 1) if happens_after(config, step, total_steps)]


def parameter_counts(trainer: Trainer) -> list[ModuleParameters]:
    """Trainable and frozen parameters of each top-level module of the model and of each loss (a loss's own
    parameters only: those it shares with the model are counted with the model)."""
    module = trainer.accelerator.unwrap_model(trainer.module)
    seen: set[int] = set()
    counts = []
    named = [(f"model.{name} ({type(child).__name__})", child) for name, child in module.model.named_children()]
    named += [(f"loss {name} ({type(loss).__name__})", loss) for name, loss in module.losses.items()]
    for name, child in named:
        trainable = frozen = 0
        for parameter in child.parameters():
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            if parameter.requires_grad:
                trainable += parameter.numel()
            else:
                frozen += parameter.numel()
        if trainable or frozen or name.startswith("model."):
            counts.append(ModuleParameters(name, trainable, frozen))
    return counts


def _datasets(trainer: Trainer, run: TrainingRun, stand_ins: set[str]) -> list[DatasetLine]:
    """`stand_ins`: the datasets (`datasets.<split>.<name>`) whose rows are stand-ins for rows still to be mined."""
    per_dataset = run.loader.batches_per_dataset()
    lines = [DatasetLine(name, "train", dataset.loss_name, None if dataset.stream is not None else len(dataset.rows),
                         per_dataset.get(name), f"datasets.train.{name}" in stand_ins)
             for name, dataset in trainer.train_sets.items()]
    lines += [DatasetLine(name, "eval", dataset.loss_name, len(dataset.rows), None, f"datasets.eval.{name}" in stand_ins)
              for name, dataset in trainer.eval_sets.items()]
    return lines


def _first_batches(trainer: Trainer, run: TrainingRun) -> list:
    run.loader.set_epoch(0)
    return list(itertools.islice(run.loader.epoch_batches(), MEASURED_BATCHES))


def _pads_left(model) -> bool:
    """A left-padding (decoder) tokenizer: its batches run padded, as length-aware execution cuts right padding only."""
    tokenizer = getattr(getattr(model, "input_module", None), "tokenizer", None)
    return getattr(tokenizer, "padding_side", None) == "left"


def _chunks_batches(config: TrainingConfig, device: torch.device, model) -> bool:
    chunking = length_chunking(config.length_chunking)
    return chunking is not None and chunking.runs_on(device) and not _pads_left(model)


def _token_sample(batches: list, length_chunking: bool) -> TokenSample | None:
    real = padded = 0
    for batch in batches:
        for features in batch["features"]:
            if not isinstance(features, dict):  # a cross-encoder's raw texts, tokenized as pairs inside its loss
                continue
            mask = features.get("attention_mask")
            if isinstance(mask, torch.Tensor) and mask.dim() == 2:
                real += int(mask.sum())
                padded += mask.numel()
    if not padded:  # static embeddings (flat token ids, nothing padded) or a cross-encoder (pairs made in the loss)
        return None
    return TokenSample(len(batches), real, padded, length_chunking)


def _measure(trainer: Trainer, run: TrainingRun, batches: list) -> StepEstimate | None:
    """Forward, backward and optimizer step on the first batches; the first is a warm-up, the others are timed.
    The model's updates are not kept (nothing is saved, and the process ends after the dry run)."""
    if not batches:
        return None
    accelerator, device = trainer.accelerator, trainer.accelerator.device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    trainer.accelerator.unwrap_model(trainer.module).set_training_progress(0, run.total_steps)
    trainer.module.train()
    passes, updates = [], []
    for batch in batches:
        _synchronize(device)
        started = time.perf_counter()
        loss = trainer.module(batch)
        accelerator.backward(loss)
        _synchronize(device)
        passes.append(time.perf_counter() - started)
        started = time.perf_counter()
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        _synchronize(device)
        updates.append(time.perf_counter() - started)
    timed = slice(1, None) if len(batches) > 1 else slice(None)
    seconds = (sum(passes[timed]) / len(passes[timed]) * trainer.config.gradient_accumulation_steps
               + sum(updates[timed]) / len(updates[timed]))
    if cuda:
        peak, kind = torch.cuda.max_memory_allocated(device), "GPU memory allocated by torch"
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    else:
        peak, kind, name = _peak_rss(), "peak resident memory of the process", str(device)
    return StepEstimate(name, seconds, peak, kind, len(passes[timed]))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, kilobytes on Linux

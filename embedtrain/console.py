"""Rich console output for the CLI: training progress, logs and evaluation tables, and mining's progress and summary."""

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from embedtrain.data.checks import DatasetReport
from embedtrain.engine.observer import TrainingObserver

if TYPE_CHECKING:  # the CLI imports this module for every command: nothing here may import torch
    from embedtrain.engine.dry_run import DryRunPlan
    from embedtrain.evaluation.mining.options import MiningOptions
    from embedtrain.evaluation.mining.summary import MiningSummary, ScoreStats

console = Console(stderr=True)


def metrics_table(title: str, metrics: dict[str, float], before: dict[str, float] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    if before is not None:
        table.add_column("before", justify="right")
    table.add_column("value" if before is None else "after", justify="right")
    for name, value in metrics.items():
        cells = [escape(name)]
        if before is not None:
            cells.append(f"{before[name]:.4f}" if name in before else "-")
        table.add_row(*cells, f"{value:.4f}")
    return table


def data_report(report: DatasetReport) -> Panel:
    """One dataset's checks: mapping, errors, warnings, duplicate shares and token-length statistics."""
    parts = []
    if report.row_count is not None:
        parts.append(f"{report.row_count} rows from {escape(report.source)}")
    if report.mapping is not None:
        how = "inferred: label by name, inputs by position" if report.mapping.inferred else "from `columns:`"
        parts.append(f"columns: {escape(report.mapping.describe())} ({how})")
    if report.mined is not None:
        parts.append(f"mined before training: {escape(report.mined)}")
    parts += [f"[red]error[/red]: {escape(message)}" for message in report.errors]
    parts += [f"[yellow]warning[/yellow]: {escape(message)}" for message in report.warnings]
    if report.duplicates:
        parts.append("duplicates: " + ", ".join(f"{name.replace('_', ' ')} {share:.1%}"
                                                 for name, share in report.duplicates.items()))
    renderables: list = ["\n".join(parts)]
    if report.token_stats:
        table = Table(title="tokens per text (first rows sampled)", title_justify="left")
        for header in ("column", "sampled", "min", "mean", "p95", "max", "truncated"):
            table.add_column(header, justify="left" if header == "column" else "right")
        for column, stats in report.token_stats.items():
            table.add_row(escape(column), str(stats.sampled), str(stats.minimum), f"{stats.mean:.1f}", str(stats.p95),
                          str(stats.maximum), f"{stats.truncated:.1%}")
        renderables.append(table)
    style = "red" if report.errors else "yellow" if report.warnings else "green"
    return Panel(Group(*renderables), title=escape(report.where), title_align="left", border_style=style)


class RichObserver(TrainingObserver):
    """Progress bar with ETA, one line per logging step, a table per evaluation, a before/after summary."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                                 transient=True)
        self.task = None
        self.first_metrics: dict[str, float] | None = None

    def mining(self, where: str) -> "RichProgress":
        return RichProgress()

    def on_mined(self, where: str, summary: "MiningSummary", options: "MiningOptions", range_max: int, scored_by: str,
                 path: Path) -> None:
        console.print(f"[bold]{escape(where)}[/bold]: mined negatives")
        console.print(mining_summary(summary, options, range_max, scored_by))
        console.print(f"wrote {escape(str(path))}")

    def on_train_start(self, total_steps: int, start_step: int) -> None:
        if start_step:
            console.print(f"resuming at step {start_step} of {total_steps}")
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step)

    def on_step(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def on_log(self, record: dict) -> None:
        parts = [f"step {record['step']}", f"epoch {record['epoch']:.2f}", f"loss {record['loss']:.4f}",
                 f"lr {record['learning_rate']:.2e}"]
        if "grad_norm" in record:
            parts.append(f"grad_norm {record['grad_norm']:.3f}")
        parts += [f"{key} {value:.4f}" for key, value in record.items() if key.endswith("_loss")]
        self.progress.console.print(" | ".join(parts))

    def on_evaluate(self, step: int, metrics: dict[str, float]) -> None:
        if step == 0:  # the evaluation before training (none with eval_before_training: false, or on resume)
            self.first_metrics = metrics
        self.progress.console.print(metrics_table(f"evaluation at step {step}", metrics))

    def on_checkpoint(self, path: Path) -> None:
        self.progress.console.print(f"checkpoint saved: {path}")

    def on_train_end(self, final_dir: Path, metrics: dict[str, float]) -> None:
        self.progress.stop()
        if metrics and self.first_metrics is not None:
            console.print(metrics_table("before vs after training", metrics, self.first_metrics))
        elif metrics:
            console.print(metrics_table("after training", metrics))
        console.print(f"[green]model saved to[/green] {escape(str(final_dir))}")


STATISTICS = (("count", "count"), ("mean", "mean"), ("std", "std"), ("min", "min"), ("25%", "p25"),
              ("median", "median"), ("75%", "p75"), ("max", "max"))


class RichProgress:
    """One progress bar per stage of mining or scoring (embedding, searching, scoring), each with its count, elapsed
    time and ETA."""

    def __init__(self) -> None:
        self.bars = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
        self.task = None

    def __enter__(self) -> "RichProgress":
        self.bars.start()
        return self

    def __exit__(self, *exception) -> bool:
        self.bars.stop()
        return False

    def stage(self, name: str, total: int) -> None:
        self.task = self.bars.add_task(name, total=total)

    def advance(self, units: int) -> None:
        self.bars.advance(self.task, units)


def scores_table(title: str, columns: "dict[str, ScoreStats | None]") -> Table:
    """Distributions side by side, e.g. {positive: ..., negative: ..., margin: ...}."""
    table = Table(title=title, title_justify="left")
    table.add_column("score")
    for name in columns:
        table.add_column(name, justify="right")
    for label, field in STATISTICS:
        cells = []
        for stats in columns.values():
            value = None if stats is None else getattr(stats, field)
            cells.append("-" if value is None else f"{value:,}" if field == "count" else f"{value:.4f}")
        table.add_row(label, *cells)
    return table


def counts_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def mining_summary(summary: "MiningSummary", options: "MiningOptions", range_max: int, scored_by: str) -> Group:
    """What a mining run kept and why: counts, skipped queries per reason, removed candidates per rule, score
    distributions (`scored_by`: the model that scored them)."""
    counts = [
        ("queries", f"{summary.queries:,} ({summary.queries_mined:,} with a positive)"),
        ("positive pairs", f"{summary.positive_pairs:,}"),
        ("corpus texts", f"{summary.corpus:,}"),
        ("negatives per query", f"{summary.negatives / summary.queries_mined:.2f} of {options.num_negatives} "
                                f"({summary.queries_short:,} queries short)"),
        ("candidates ranked", f"{options.range_min} to {range_max}"),
        ("queries skipped", f"{summary.queries_skipped:,} ({summary.skipped_share:.1%})"),
        *((f"  {reason}", f"{count:,}") for reason, count in summary.skipped.items()),
        ("candidates removed", f"{sum(summary.removed.values()):,} of {summary.candidates:,}"),
        *((f"  {rule.replace('_', ' ')}", f"{count:,} ({count / max(summary.candidates, 1):.1%})")
          for rule, count in summary.removed.items()),
        ("rows written", f"{summary.rows:,} ({options.output_format})"),
    ]
    return Group(counts_table("mined", counts),
                 scores_table(f"scores ({escape(scored_by)})", {"positive": summary.positive_scores,
                                                               "negative": summary.negative_scores,
                                                               "positive - negative": summary.margins}))


def dry_run_report(plan: "DryRunPlan") -> Group:
    """The plan of a run (`embedtrain train --dry-run`): data, steps, parameters, tokens and an estimate."""
    datasets = Table(title="datasets", title_justify="left")
    for header in ("dataset", "split", "loss", "rows", "batches/epoch"):
        datasets.add_column(header, justify="left" if header in ("dataset", "split", "loss") else "right")
    for line in plan.datasets:
        bound = "≤ " if line.to_be_mined else ""  # rows still to be mined: the most mining can write
        datasets.add_row(escape(line.name), line.split, escape(line.loss), bound + _or_dash(line.rows, "stream"),
                         bound + _or_dash(line.batches_per_epoch))

    per_process = f" per process, {plan.num_processes} processes" if plan.num_processes > 1 else ""
    length = f"{plan.epochs} epochs x {plan.steps_per_epoch} steps" if plan.epochs else "training.max_steps"
    mining = [f"[bold]mining[/bold] {escape(line.where)}: " + (
        f"mined negatives cached in {escape(str(line.path))}; the run reuses them" if line.cached else
        f"negatives to be mined by {escape(line.model)} when the run starts, cached in {escape(str(line.path))} (not "
        f"there yet); until then its rows and batches (≤) are the most mining can write, and the estimate is timed on "
        f"stand-in negatives") for line in plan.mining]
    lines = [*mining,
        f"[bold]batches per epoch[/bold] {_or_dash(plan.batches_per_epoch, 'unknown (stream)')}{per_process} "
        f"(batch size {plan.batch_size}, gradient accumulation {plan.gradient_accumulation_steps})",
        f"[bold]steps per epoch[/bold] {_or_dash(plan.steps_per_epoch, 'unknown (stream)')}",
        f"[bold]optimizer steps[/bold] {plan.total_steps} ({length})",
        f"[bold]warm-up steps[/bold] {plan.warmup_steps}",
        f"[bold]evaluations at steps[/bold] {_steps(plan.evaluation_steps)}",
        f"[bold]checkpoints at steps[/bold] {_steps(plan.checkpoint_steps)}",
    ]
    if plan.tokens is not None:
        tokens = plan.tokens
        per_batch = tokens.padded_tokens / tokens.batches
        saved = ("length-aware execution (training.length_chunking) skips most of it" if tokens.length_chunking
                 else "the encoder computes it (training.length_chunking is off or auto on a GPU, or the model pads "
                      "on the left)")
        lines.append(f"[bold]tokens per batch[/bold] {tokens.real_tokens / tokens.batches:.0f} real of {per_batch:.0f} "
                     f"padded ({tokens.padding_share:.0%} padding, first {tokens.batches} batches); {saved}")
    if plan.estimate is not None:
        estimate = plan.estimate
        memory = "-" if estimate.peak_memory_bytes is None else f"{estimate.peak_memory_bytes / 2**30:.2f} GiB"
        total = estimate.seconds_per_step * plan.total_steps
        lines.append(f"[bold]estimate[/bold] on {escape(estimate.device)}: {estimate.seconds_per_step:.3f} s per "
                     f"optimizer step (about {_duration(total)} for {plan.total_steps} steps, without evaluations), "
                     f"peak memory {memory} ({estimate.memory_kind}); from {estimate.batches_timed} timed "
                     f"forward/backward passes on real batches, after one warm-up")

    parameters = Table(title="parameters", title_justify="left")
    for header in ("module", "trainable", "frozen"):
        parameters.add_column(header, justify="left" if header == "module" else "right")
    for entry in plan.parameters:
        parameters.add_row(escape(entry.name), f"{entry.trainable:,}", f"{entry.frozen:,}")
    parameters.add_row("[bold]total[/bold]", f"{sum(e.trainable for e in plan.parameters):,}",
                       f"{sum(e.frozen for e in plan.parameters):,}")
    footer = (f"[green]dry run: every check passed[/green]; nothing trained, nothing written "
              f"({escape(str(plan.output_dir))} untouched)")
    return Group(datasets, "\n".join(lines), parameters, footer)


def _or_dash(value: int | None, missing: str = "-") -> str:
    return missing if value is None else str(value)


def _steps(steps: list[int]) -> str:
    if not steps:
        return "none"
    if len(steps) <= 8:
        return ", ".join(map(str, steps))
    return ", ".join(map(str, steps[:4])) + ", ..., " + ", ".join(map(str, steps[-2:])) + f" ({len(steps)} in all)"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

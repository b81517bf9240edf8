"""Rich console output for the CLI: training progress, logs and evaluation tables."""

from pathlib import Path

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from embedtrain.data.checks import DatasetReport
from embedtrain.engine.observer import TrainingObserver

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

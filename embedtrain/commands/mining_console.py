"""What `mine` and `score` show: a progress bar with ETA per stage, and tables of counts and score distributions."""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from embedtrain.console import console
from embedtrain.evaluation.mining.summary import ScoreStats

STATISTICS = (("count", "count"), ("mean", "mean"), ("std", "std"), ("min", "min"), ("25%", "p25"),
              ("median", "median"), ("75%", "p75"), ("max", "max"))


class RichProgress:
    """One progress bar per stage (embedding, searching, scoring), each with its count, elapsed time and ETA."""

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


def scores_table(title: str, columns: dict[str, ScoreStats | None]) -> Table:
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

"""How the training loop reports progress. The library only calls these hooks; the CLI draws them."""

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module for every command, and mining imports torch
    from embedtrain.evaluation.mining.options import MiningOptions
    from embedtrain.evaluation.mining.progress import Progress
    from embedtrain.evaluation.mining.summary import MiningSummary


class TrainingObserver:
    """Receives training events on the main process. Every hook is optional (no-op by default)."""

    def mining(self, where: str) -> "AbstractContextManager[Progress]":
        """The progress of mining the dataset `where` (a recipe's `mine:` step), entered while it mines."""
        from embedtrain.evaluation.mining.progress import NoProgress

        return nullcontext(NoProgress())

    def on_mined(self, where: str, summary: "MiningSummary", options: "MiningOptions", range_max: int, scored_by: str,
                 path: Path) -> None:
        """Dataset `where` was mined (`scored_by`: the model whose scores chose the negatives) and written to `path`."""

    def on_train_start(self, total_steps: int, start_step: int) -> None: ...

    def on_step(self, step: int) -> None: ...

    def on_log(self, record: dict) -> None: ...

    def on_evaluate(self, step: int, metrics: dict[str, float]) -> None: ...

    def on_checkpoint(self, path: Path) -> None: ...

    def on_train_end(self, final_dir: Path, metrics: dict[str, float]) -> None: ...

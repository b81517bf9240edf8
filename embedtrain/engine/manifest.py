"""`run.json`, the run's manifest, and `metrics.json`, the evaluation of the final model: what a user coming back to a
run (or a CI job, or `embedtrain report`) reads to know what ran, on what, and how it ended.

run.json is written when training starts, after each checkpoint and at the end: status `running`, then `finished`,
`failed` (with the error) or `interrupted` (Ctrl-C, or SIGTERM: preempted, resumable). It names the recipe by its
hash, the data by content fingerprints, the versions, the project's git commit, the host and hardware, the times
(UTC, ISO 8601), the steps, the best checkpoint and the final metrics. Paths in it are relative to the output
directory, and every write replaces the file atomically (a reader never sees half of one). Only the main process
writes.
"""

import hashlib
import json
import math
import os
import re
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from embedtrain.card.environment import framework_versions, hardware
from embedtrain.data.source import public_name
from embedtrain.data.training_data import PreparedDataset
from embedtrain.engine.checkpoint import CHECKPOINT_PATTERN, TrainerState
from embedtrain.engine.run_files import FAILED, FINISHED, INTERRUPTED, METRICS_FILE, RESOLVED_RECIPE, RUN_FILE, RUNNING
from embedtrain.engine.trackers import tracker_dirs
from embedtrain.evaluation.mining.output import fingerprint
from embedtrain.recipe.loading import dump_recipe
from embedtrain.recipe.schema import Recipe

FORMAT = 1  # run.json's layout version, for tools that read it


class RunRecord:
    """run.json of one run. On processes other than the main one, every method does nothing."""

    def __init__(self, output_dir: Path, fields: dict, active: bool = True) -> None:
        self.output_dir = output_dir
        self.fields = fields
        self.active = active
        self._started = time.monotonic()

    @classmethod
    def begin(cls, recipe: Recipe, datasets: dict[str, dict[str, PreparedDataset]], *, processes: int,
              active: bool, resume: bool, recipe_file: Path | None) -> "RunRecord":
        """Write run.json with status `running` (`datasets`: split -> name -> the prepared data)."""
        config = recipe.training
        fields = {
            "format": FORMAT,
            "status": RUNNING,
            "error": None,
            "started": _now(),
            "ended": None,
            "seconds": None,
            "resumed": resume,
            "recipe": {"file": RESOLVED_RECIPE, "sha256": _sha256(dump_recipe(recipe))},
            "model": {"base": public_name(recipe.model.base), "kind": recipe.model.kind},
            "data": _data(recipe, datasets) if active else {},
            "git": git_commit(recipe_file) if active else None,
            "host": socket.gethostname(),
            "hardware": hardware(),
            "processes": processes,
            "versions": framework_versions(),
            "steps": {"done": 0, "total": None},
            "latest_checkpoint": None,
            "best_checkpoint": None,
            "metric_for_best_model": config.metric_for_best_model,
            "final": None,
            "emissions_kg": None,
            "trackers": tracker_dirs(config),
        }
        record = cls(Path(config.output_dir), fields, active)
        record._write()
        return record

    def training_started(self, step: int, total_steps: int) -> None:
        self.fields["steps"] = {"done": step, "total": total_steps}
        self._write()

    def checkpoint_written(self, checkpoint: Path, state: TrainerState) -> None:
        self.fields["steps"]["done"] = state.step
        self.fields["latest_checkpoint"] = self._relative(checkpoint)
        if state.best_checkpoint is not None:
            self.fields["best_checkpoint"] = {
                "path": self._relative(checkpoint.parent / state.best_checkpoint),
                "step": checkpoint_step(state.best_checkpoint), "value": state.best_metric}
        self._write()

    def finished(self, final_dir: Path, step: int, metrics: dict[str, float], evaluated_at: int,
                 emissions_kg: float | None) -> None:
        """The run ended well: status `finished`, and metrics.json with the evaluation of the final model (taken at
        step `evaluated_at`: the last one, or the best checkpoint's with training.load_best_model_at_end)."""
        if not self.active:
            return
        card = final_dir / "README.md"
        self.fields["steps"]["done"] = step
        self.fields["emissions_kg"] = emissions_kg
        self.fields["final"] = {"model": self._relative(final_dir),
                                "card": self._relative(card) if card.exists() else None,
                                "metrics_file": METRICS_FILE, "evaluated_at_step": evaluated_at,
                                "metrics": _finite_or_null(metrics)}
        write_json(self.output_dir / METRICS_FILE, {"model": self._relative(final_dir), "step": evaluated_at,
                                                    "metrics": _finite_or_null(metrics)})
        self._end(FINISHED, None)

    def stopped(self, error: BaseException, interrupted: bool, step: int | None) -> None:
        """The run stopped early: `interrupted` (a stop signal or Ctrl-C; it can be resumed) or `failed`."""
        if step is not None:
            self.fields["steps"]["done"] = step
        message = str(error).strip() or type(error).__name__
        self._end(INTERRUPTED if interrupted else FAILED, relative_message(message, self.output_dir))

    def _end(self, status: str, error: str | None) -> None:
        self.fields |= {"status": status, "error": error, "ended": _now(),
                        "seconds": round(time.monotonic() - self._started, 3)}
        self._write()

    def _relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.output_dir)).as_posix()

    def _write(self) -> None:
        if self.active:
            write_json(self.output_dir / RUN_FILE, self.fields)


def write_json(path: Path, value: dict) -> None:
    """Write `value` to `path` atomically: a temporary file beside it, then a rename over it."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    staging.replace(path)


def checkpoint_step(name: str) -> int:
    return int(CHECKPOINT_PATTERN.match(name).group(1))


def git_commit(recipe_file: Path | None) -> dict | None:
    """{"commit": sha, "dirty": bool} of the git repository holding the recipe (the project it belongs to), or
    None: no recipe file, not in a repository, or no git."""
    if recipe_file is None:
        return None
    folder = str(recipe_file.resolve().parent)
    try:
        head = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        changes = subprocess.run(["git", "-C", folder, "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(changes.stdout.strip()) if changes.returncode == 0 else None}


ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])/[^\s'\"`(),;:]+")


def relative_message(message: str, output_dir: Path) -> str:
    """An error message as run.json may hold it: a path in the output directory relative to it, any other absolute
    path by its public name (see data.source.public_name)."""
    for form in {str(output_dir.resolve()), str(output_dir.absolute())}:
        message = message.replace(form + "/", "").replace(form, ".")
    return ABSOLUTE_PATH.sub(lambda found: public_name(found.group(0)), message)


def _data(recipe: Recipe, datasets: dict[str, dict[str, PreparedDataset]]) -> dict:
    """Per split and dataset: its source (public name), split, rows and a fingerprint of the values it trains on
    (the mapped columns, in order): the same data gives the same fingerprint on any machine. A stream has neither."""
    described = {}
    for split, prepared in datasets.items():
        configs = getattr(recipe.datasets, split)
        described[split] = {}
        for name, dataset in prepared.items():
            config = configs[name]
            columns = [*dataset.mapping.input_columns, *([dataset.mapping.label] if dataset.mapping.label else [])]
            streamed = dataset.stream is not None
            # One batch read (iterating a datasets Column reads row by row: ten times slower); the hash itself costs
            # about 2 s per 100,000 rows of 3 short columns (measured on a busy 2-core machine), once, at the start.
            values = {} if streamed else dataset.rows.select_columns(columns)[:]
            described[split][name] = {
                "source": public_name(config.source), "subset": config.subset, "split": config.split,
                "revision": config.revision, "columns": columns, "rows": None if streamed else len(dataset.rows),
                "fingerprint": None if streamed else fingerprint(*(values[column] for column in columns))}
    return described


def _finite_or_null(metrics: dict[str, float]) -> dict[str, float | None]:
    return {name: None if math.isnan(value) else value for name, value in metrics.items()}


def _sha256(text: str) -> str:
    return f"sha256:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

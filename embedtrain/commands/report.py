"""`embedtrain report RUN_DIR`: a summary of a finished or running run for a user who comes back to it, from its
run.json (status, times, steps, best checkpoint, final metrics) and metrics.jsonl (progress, throughput, losses), with
where its model, card, plots and tracker logs are."""

import json
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from embedtrain.engine.lock import LOCK_FILE
from embedtrain.engine.run_files import (
    EMISSIONS_FOLDER,
    FAILED,
    FINISHED,
    INTERRUPTED,
    METRICS_FILE,
    METRICS_LOG,
    RESOLVED_RECIPE,
    RUN_FILE,
    RUNNING,
)
from embedtrain.errors import RecipeError

STATUS_STYLE = {FINISHED: "green", RUNNING: "cyan", INTERRUPTED: "yellow", FAILED: "red"}


@dataclass(frozen=True)
class RunReport:
    run_dir: Path
    manifest: dict
    training_logs: list[dict]  # metrics.jsonl records of training steps (with "loss")
    evaluations: list[dict]  # the other records: evaluations
    locked: bool  # a process holds the directory (the run is alive)

    def latest_step(self) -> int:
        """The latest step logged (run.json counts steps at checkpoints only while a run goes on)."""
        return max([(self.manifest.get("steps") or {}).get("done") or 0] + [r["step"] for r in self.training_logs])

    def samples_per_second(self) -> float | None:
        """The median of the logged windows' throughput: the first window holds the start-up, and windows with an
        evaluation or a checkpoint their time."""
        rates = [record["samples_per_second"] for record in self.training_logs if "samples_per_second" in record]
        return statistics.median(rates) if rates else None

    def as_json(self) -> dict:
        """run.json, with what metrics.jsonl adds: the latest step, the throughput and the latest evaluation."""
        return self.manifest | {"progress": {
            "latest_step": self.latest_step(), "samples_per_second": self.samples_per_second(),
            "latest_evaluation": self.evaluations[-1] if self.evaluations else None, "held_by_a_process": self.locked}}


def read_run(run_dir: Path) -> RunReport:
    """The run in `run_dir`; RecipeError (exit 2) when it is not the output directory of a run."""
    if not run_dir.is_dir():
        raise RecipeError(f"{run_dir}: not a directory; give the output directory of a run (training.output_dir)")
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        raise RecipeError(f"{run_dir}: no {RUN_FILE}, so not the output directory of an embedtrain run (its "
                          f"training.output_dir, which `embedtrain train` fills once training starts)")
    try:
        manifest = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RecipeError(f"{run_file}: cannot be read as JSON ({error})") from None
    if not isinstance(manifest, dict) or "status" not in manifest:
        raise RecipeError(f"{run_file}: not an embedtrain run manifest (no status)")
    records = _records(run_dir / METRICS_LOG)
    return RunReport(run_dir, manifest, [r for r in records if "loss" in r], [r for r in records if "loss" not in r],
                     (run_dir / LOCK_FILE).exists())


def _records(path: Path) -> list[dict]:
    """metrics.jsonl's records; a line being written by a live run (incomplete JSON) is skipped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def report_view(report: RunReport) -> Group:
    """The summary as rich renderables: the run, its metrics, and its files."""
    return Group(_run_table(report), *_notes(report), _metrics_table(report), _files_table(report))


def _run_table(report: RunReport) -> Table:
    run = report.manifest
    status = run["status"]
    table = Table(title=f"run {escape(str(report.run_dir))}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]")
    done, total = report.latest_step(), (run.get("steps") or {}).get("total")
    table.add_row("steps", f"{done} / {total}" if total else str(done))
    if report.training_logs and "epoch" in report.training_logs[-1]:
        table.add_row("epoch", str(report.training_logs[-1]["epoch"]))
    table.add_row("started", str(run.get("started")))
    table.add_row("ended" if run.get("ended") else "elapsed",
                  f"{run['ended']} ({_duration(run.get('seconds'))})" if run.get("ended") else _since(run.get("started")))
    if (rate := report.samples_per_second()) is not None:
        last = next(r["samples_per_second"] for r in reversed(report.training_logs) if "samples_per_second" in r)
        table.add_row("throughput", f"{rate:.1f} samples/s (median of the logged windows; last {last:.1f})")
    if report.training_logs:
        first, last = report.training_logs[0]["loss"], report.training_logs[-1]["loss"]
        table.add_row("training loss", f"{first:.4f} at step {report.training_logs[0]['step']} -> {last:.4f} at "
                                       f"step {report.training_logs[-1]['step']}")
    model = run.get("model") or {}
    table.add_row("model", escape(f"{model.get('base')} ({model.get('kind')})"))
    processes = run.get("processes") or 1
    table.add_row("hardware", escape(f"{run.get('hardware')}, {processes} process{'es' if processes > 1 else ''}, "
                                     f"host {run.get('host')}"))
    best, metric = run.get("best_checkpoint"), run.get("metric_for_best_model")
    if best and metric:
        table.add_row("best checkpoint", escape(f"step {best['step']}: {metric} = {best['value']:.4f} ({best['path']})"))
    if run.get("emissions_kg") is not None:
        table.add_row("emissions", f"{run['emissions_kg'] * 1000:.3f} g CO2-eq")
    git = run.get("git")
    if git:
        table.add_row("git", escape(git["commit"][:12] + (" (uncommitted changes)" if git.get("dirty") else "")))
    return table


def _notes(report: RunReport) -> list[str]:
    run, notes = report.manifest, []
    if run.get("error"):
        notes.append(f"[{STATUS_STYLE.get(run['status'], 'red')}]{escape(run['status'])}:[/] {escape(run['error'])}")
    if run["status"] == INTERRUPTED or (run["status"] == RUNNING and not report.locked):
        lost = "" if run["status"] == INTERRUPTED else "no process holds the directory: the run was killed. "
        notes.append(f"{lost}Continue it with `embedtrain train RECIPE --output-dir {escape(str(report.run_dir))} "
                     f"--resume` (from {escape(str(run.get('latest_checkpoint') or 'the start: no checkpoint'))})")
    return notes


def _metrics_table(report: RunReport) -> Table:
    """The final model's metrics (a finished run), else the latest evaluation."""
    run = report.manifest
    final = run.get("final")
    if final:
        title, metrics = f"metrics of the final model (step {final.get('evaluated_at_step')})", final["metrics"]
    elif report.evaluations:
        title, metrics = f"latest evaluation (step {report.evaluations[-1]['step']})", report.evaluations[-1]
    else:
        title, metrics = "no evaluation yet", {}
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if name != "step":
            table.add_row(escape(name), "nan" if value is None else f"{value:.4f}")
    return table


def _files_table(report: RunReport) -> Table:
    """What the run left, relative to RUN_DIR, each only when it exists."""
    run, root = report.manifest, report.run_dir
    final = run.get("final") or {}
    entries = [("final model", final.get("model")), ("model card", final.get("card")),
               ("final metrics", METRICS_FILE), ("training log", METRICS_LOG), ("resolved recipe", RESOLVED_RECIPE),
               ("latest checkpoint", run.get("latest_checkpoint"))]
    entries += [(f"{tracker} logs", folder) for tracker, folder in (run.get("trackers") or {}).items()]
    if run.get("emissions_kg") is not None:
        entries.append(("emissions log", f"{EMISSIONS_FOLDER}/emissions.csv"))
    plots = sorted(p for p in root.rglob("*.png") if "checkpoints" not in p.relative_to(root).parts)
    entries += [("plot", p.relative_to(root).as_posix()) for p in plots]
    table = Table(title="files (in the run directory)", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for what, path in entries:
        if path and (root / path).exists():
            table.add_row(what, escape(path))
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{rest:02d}s" if hours else f"{minutes}m{rest:02d}s"


def _since(started: str | None) -> str:
    if not started:
        return "?"
    return _duration((datetime.now(UTC) - datetime.fromisoformat(started)).total_seconds()) + " so far"

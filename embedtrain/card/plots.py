"""The training plots: the loss (of each training dataset), the learning rate and each evaluation's headline metric
over the steps, as PNG files, from the history records (metrics.jsonl; see training_card.py for their keys).

matplotlib is the optional `plots` extra: without it, the plots are skipped with one warning saying how to get them,
and the card says so instead of linking images that do not exist. Figures are drawn on matplotlib's Agg canvas
directly (no pyplot, no display, no global figure state)."""

import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PLOTS_FOLDER = "plots"
INSTALL_HINT = "pip install 'embedtrain[plots]'"


@dataclass(frozen=True)
class Plot:
    file: str  # relative to the folder the plots are written into, e.g. plots/loss.png
    title: str


@dataclass(frozen=True)
class Series:
    label: str
    steps: list[int]
    values: list[float]


def plot_series(history: list[dict], train_sets: list[str], primary_metrics: list[str], eval_losses: list[str]
                ) -> dict[str, tuple[str, str, list[Series]]]:
    """What to draw, from the history: file stem -> (title, y label, series). The loss: the total, and each training
    dataset's when there are several, plus each eval dataset's loss (`eval_losses`, which are also in `primary_metrics`); the learning rate; one plot per evaluator's
    primary metric. A series the history does not hold is left out (a run that never evaluated has no metric plot)."""
    training = [record for record in history if "learning_rate" in record]
    evaluations = [record for record in history if "learning_rate" not in record]

    def series(records: list[dict], key: str, label: str) -> Series:
        points = [(record["step"], record[key]) for record in records if record.get(key) is not None]
        return Series(label, [step for step, _ in points], [float(value) for _, value in points])

    losses = [series(training, "loss", "training loss" if len(train_sets) == 1 else "training loss (all datasets)")]
    if len(train_sets) > 1:
        losses += [series(training, f"{name}_loss", f"{name} (training)") for name in train_sets]
    losses += [series(evaluations, metric, metric) for metric in eval_losses]
    plots = {"loss": ("Loss", "loss", losses),
             "learning_rate": ("Learning rate", "learning rate", [series(training, "learning_rate", "learning rate")])}
    for metric in primary_metrics:
        if metric not in eval_losses:
            plots[_file_stem(metric)] = (metric, metric, [series(evaluations, metric, metric)])
    return {stem: (title, ylabel, kept) for stem, (title, ylabel, drawn) in plots.items()
            if (kept := [line for line in drawn if line.steps])}


def _file_stem(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", metric)


def write_plots(history: list[dict], train_sets: list[str], primary_metrics: list[str], eval_losses: list[str],
                directories: list[Path]) -> list[Plot] | None:
    """Draw the plots into `<directory>/plots/` of the first directory and copy them into the others; the plots
    written (paths relative to a directory), or None when matplotlib is not installed (logged once, here)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        logger.warning("training plots skipped: matplotlib is not installed; %s to get them beside the model card",
                       INSTALL_HINT)
        return None
    first, *others = directories
    (first / PLOTS_FOLDER).mkdir(parents=True, exist_ok=True)
    plots = []
    for stem, (title, ylabel, lines) in plot_series(history, train_sets, primary_metrics, eval_losses).items():
        figure = Figure(figsize=(6.4, 4.0), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for line in lines:
            axes.plot(line.steps, line.values, marker="o" if len(line.steps) < 20 else None, label=line.label)
        axes.set(title=title, xlabel="step", ylabel=ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps
        axes.grid(alpha=0.3)
        if len(lines) > 1:
            axes.legend()
        figure.tight_layout()
        plot = Plot(f"{PLOTS_FOLDER}/{stem}.png", title)
        figure.savefig(first / plot.file, format="png")
        plots.append(plot)
    for directory in others:
        (directory / PLOTS_FOLDER).mkdir(parents=True, exist_ok=True)
        for plot in plots:
            shutil.copyfile(first / plot.file, directory / plot.file)
    return plots


def plots_section(plots: Sequence[Plot] | None) -> str | None:
    """'### Training Plots' embedding each plot by its relative path; without matplotlib, the line that says why
    there are none; None when the history held nothing to draw."""
    if plots is None:
        return f"### Training Plots\n\nNo plots: matplotlib was not installed when this model was trained ({INSTALL_HINT})."
    if not plots:
        return None
    return "### Training Plots\n\n" + "\n\n".join(f"![{plot.title}]({plot.file})" for plot in plots)

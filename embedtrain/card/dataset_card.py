"""A training or evaluation dataset as the model card shows it: where it comes from, its size and columns, the token
statistics that the data checks measured before training (data/checks.py), a few sample rows and its loss."""

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from embedtrain.card.sections import cell, table
from embedtrain.data.checks import DatasetReport, TokenStats
from embedtrain.data.training_data import PreparedDataset
from embedtrain.losses.registry import LossParams

CLASS_COUNTS = 10
SAMPLE_ROWS = 3
SAMPLE_CHARACTERS = 120
"""A sample cell longer than this is cut: the card shows what the data looks like, not the data."""


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    split: str  # train or eval
    source: str  # its public name (data.source.public_name): never a path of this machine
    rows: int  # of a streamed dataset: the rows checked before training
    streamed: bool
    columns: str  # the resolved column mapping, e.g. "sentence1=premise, sentence2=hypothesis, label=score"
    loss: str  # the name of its entry in the recipe's `losses:`
    token_stats: dict[str, TokenStats]  # column (a cross-encoder: 'first+second' pair) -> statistics
    samples: list[dict[str, str]]  # the first rows, column -> value as text
    texts: list[str]  # the input texts of the first rows, in order (for the Hub's widget)
    label: str | None = None  # the label column's values in words (numbers: range and mean; few classes: counts)


def summarize_dataset(split: str, dataset: PreparedDataset, report: DatasetReport | None, source: str
                      ) -> DatasetSummary:
    """The card's view of a prepared dataset; `report` is the data check's report of it (its token statistics)."""
    columns = [*dataset.mapping.input_columns, *([dataset.mapping.label] if dataset.mapping.label else [])]
    first = dataset.rows.select(range(min(SAMPLE_ROWS, len(dataset.rows)))).select_columns(columns)
    return DatasetSummary(
        name=dataset.name, split=split, source=source, rows=len(dataset.rows), streamed=dataset.stream is not None,
        columns=dataset.mapping.describe(), loss=dataset.loss_name,
        token_stats=dict(report.token_stats) if report is not None else {},
        samples=[{column: _text(row[column]) for column in columns} for row in first],
        texts=[row[column] for row in first for column in dataset.mapping.input_columns if isinstance(row[column], str)],
        label=_label_summary(dataset.rows.data.column(dataset.mapping.label)) if dataset.mapping.label else None)


def _label_summary(values: pa.ChunkedArray) -> str | None:
    """Up to CLASS_COUNTS integer values by their counts, other numbers by min/mean/max; None for lists."""
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type)):
        return None
    numbers = np.asarray(values, dtype=np.float64)
    distinct, counts = np.unique(numbers, return_counts=True)
    if not pa.types.is_floating(values.type) and len(distinct) <= CLASS_COUNTS:
        return ", ".join(f"{value:g}: {count} ({count / len(numbers):.0%})" for value, count in zip(distinct, counts))
    return f"min {numbers.min():.4g}, mean {numbers.mean():.4g}, max {numbers.max():.4g}"


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def dataset_section(summary: DatasetSummary, loss: LossParams) -> str:
    size = (f"{summary.rows} rows checked before training (streamed)" if summary.streamed
            else f"{summary.rows} rows")
    parts = [f"#### {summary.name}",
             f"- Source: `{summary.source}`\n- Size: {size}\n- Columns: {summary.columns}"
             + (f"\n- Label: {summary.label}" if summary.label else "")]
    if summary.token_stats:
        parts.append(_token_table(summary.token_stats))
    if summary.samples:
        header = list(summary.samples[0])
        parts.append("- Samples:\n\n" + table(header, [[cell(row[column], SAMPLE_CHARACTERS) for column in header]
                                                       for row in summary.samples]))
    parameters = json.dumps(loss.model_dump(mode="json", exclude={"type"}), indent=2)
    parts.append(f"- Loss: `{loss.type}` with these parameters:\n\n```json\n{parameters}\n```")
    return "\n\n".join(parts)


def _token_table(stats: dict[str, TokenStats]) -> str:
    sampled = max(stat.sampled for stat in stats.values())
    rows = [[name, str(stat.minimum), f"{stat.mean:.2f}", str(stat.p95), str(stat.maximum), f"{stat.truncated:.1%}"]
            for name, stat in stats.items()]
    return (f"- Token statistics (special tokens included; first {sampled} rows):\n\n"
            + table(["column", "min", "mean", "p95", "max", "truncated"], rows))

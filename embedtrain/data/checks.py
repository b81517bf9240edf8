"""Data checks against a loss's (or evaluator's) column contract, collected as findings instead of raised one by one.

Errors make a dataset unusable (training never starts); warnings point at data that trains but
trains badly: duplicates that act as false negatives for in-batch-negative losses, texts the model
will truncate. `embedtrain validate-dataset` shows every finding; `embedtrain train` runs the same
checks before any model weights are loaded and refuses to start on an error.
"""

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, IterableDataset

from embedtrain.data.contract import LIST_LABEL_KINDS, ColumnContract, ColumnMapping, resolve_columns
from embedtrain.data.source import DataSource, load_source, load_stream
from embedtrain.errors import DataError

ROWS_SHOWN = 5
DUPLICATE_WARNING_RATE = 0.01
TRUNCATION_WARNING_RATE = 0.01
TOKEN_SAMPLE = 2000
"""Rows tokenized for length statistics (the first N): enough for percentiles, fast on any dataset."""
STREAM_SAMPLE = 10_000
"""Rows of a streamed dataset that are read and checked before training (the rest is checked as it streams)."""


@dataclass(frozen=True)
class Finding:
    severity: Literal["error", "warning"]
    message: str


@dataclass(frozen=True)
class TokenStats:
    """Token counts (special tokens included) of one column on its first `sampled` rows, or, for a cross-encoder, of
    the pairs of two inputs ('query+documents') on their first `sampled` pairs."""

    sampled: int
    minimum: int
    mean: float
    p95: int
    maximum: int
    truncated: float  # share of texts longer than max_seq_length


@dataclass(frozen=True)
class LoadedData:
    """The rows of a data source whose columns matched a contract: what training and evaluators read."""

    rows: Dataset  # for a stream: its first STREAM_SAMPLE rows, which were checked
    mapping: ColumnMapping
    stream: IterableDataset | None = None


@dataclass
class DatasetReport:
    """Everything checked about one data source, for people (validate-dataset) and for the decision to train."""

    where: str
    source: str
    contract: ColumnContract
    row_count: int | None = None  # rows read (of a stream: rows checked)
    mapping: ColumnMapping | None = None
    findings: list[Finding] = field(default_factory=list)
    duplicates: dict[str, float] = field(default_factory=dict)
    token_stats: dict[str, TokenStats] = field(default_factory=dict)
    mined: str | None = None  # data that negatives are mined for before training: what mining writes for the loss

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.findings if f.severity == "warning"]

    def error(self, message: str) -> None:
        self.findings.append(Finding("error", message))

    def warning(self, message: str) -> None:
        self.findings.append(Finding("warning", message))


@dataclass(frozen=True)
class Batching:
    """How a dataset's rows will be batched, when a recipe says it: what is left to fix about its duplicates
    depends on it. `sampler` is training.batch_sampler for a training dataset, `in_order` for an eval dataset (eval
    batches are the rows in order)."""

    sampler: Literal["random", "no_duplicates", "group_by_label", "in_order"]
    batch_size: int


@dataclass(frozen=True)
class Tokenization:
    """What the length checks need from the model: its tokenizer and maximum sequence length."""

    tokenizer: object
    max_seq_length: int


def inspect_source(config: DataSource, contract: ColumnContract, where: str, tokenization: Tokenization | None = None,
                   streaming: bool = False, batching: Batching | None = None) -> tuple[DatasetReport, LoadedData | None]:
    """Load a data source and check it against `contract`; never raises DataError, it reports it.

    Returns the report and the loaded data (None when it could not be read or its columns do not match).
    A streamed source is checked on its first STREAM_SAMPLE rows. `batching` (a recipe's) decides what the
    duplicate check advises; without it (a file checked alone), it advises training.batch_sampler: no_duplicates.
    """
    report = DatasetReport(where=where, source=config.source, contract=contract)
    try:
        stream = load_stream(config, where) if streaming else None
        rows = _first_rows_of(stream, where) if streaming else load_source(config, where)
        report.row_count = len(rows)
        if streaming and len(rows) == 0:
            report.error(f"{where}: the dataset has no rows")
            return report, None
        report.mapping = resolve_columns(rows.column_names, contract, config.columns, config.ignored_columns(), where)
    except DataError as error:
        report.error(str(error))
        return report, None
    data = LoadedData(rows, report.mapping, stream)
    inspect_rows(report, data, tokenization, batching)
    return report, data


def _first_rows_of(stream: IterableDataset, where: str) -> Dataset:
    try:
        return Dataset.from_list(list(stream.take(STREAM_SAMPLE)))
    except Exception as error:  # reading is where a stream meets bad bytes or malformed lines
        raise DataError(f"{where}: cannot read the stream: {type(error).__name__}: {error}") from error


def inspect_rows(report: DatasetReport, data: LoadedData, tokenization: Tokenization | None,
                 batching: Batching | None = None) -> None:
    rows, mapping, where = data.rows, data.mapping, report.where
    if len(rows) == 0:
        report.error(f"{where}: the dataset has no rows")
        return
    for role, column in mapping.inputs:
        check = _check_text_lists if role == report.contract.list_input else _check_text
        check(report, rows.data.column(column), column, role)
    if mapping.label and report.contract.label == "list_scores":
        lists = dict(mapping.inputs)[report.contract.list_input]
        _check_list_scores(report, rows.data.column(mapping.label), mapping.label, rows.data.column(lists), lists)
    elif mapping.label:
        _check_label(report, rows.data.column(mapping.label), mapping.label)
    if report.errors:
        return
    if report.contract.in_batch_negatives:
        _check_duplicates(report, data, batching)
    if tokenization is not None:
        _check_lengths(report, data, tokenization)


def raise_on_errors(reports: list[DatasetReport], extra_errors: list[str] = ()) -> None:
    """One DataError listing every error of every report (so all are fixed in one go)."""
    errors = [error for report in reports for error in report.errors] + list(extra_errors)
    if errors:
        count = len(errors)
        raise DataError(f"{count} data problem{'s' if count > 1 else ''}:\n" + "\n".join(f"  - {e}" for e in errors),
                        problems=errors)


def _rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(row) for row in rows[:ROWS_SHOWN])
    return f"row {shown}" if len(rows) == 1 else f"rows {shown}" + (", ..." if len(rows) > ROWS_SHOWN else "")


def _check_text(report: DatasetReport, values: pa.ChunkedArray, column: str, role: str) -> None:
    where = f"{report.where}: column {column!r} ({role})"
    if pa.types.is_null(values.type):  # every value missing: Arrow cannot tell the type
        report.error(f"{where} has no values at all ({len(values)} missing)")
        return
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        report.error(f"{where} must hold text, but its type is {values.type}; map a text column to {role}")
        return
    nulls = np.asarray(values.is_null())
    if nulls.any():
        report.error(f"{where} has {int(nulls.sum())} missing values, at {_rows(nulls)}; drop or fill those rows")
    blank = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), False))
    if blank.any():
        report.error(f"{where} has {int(blank.sum())} empty texts, at {_rows(blank)}; drop or fill those rows")


def _check_text_lists(report: DatasetReport, values: pa.ChunkedArray, column: str, role: str) -> None:
    """A list input: every row a list of at least one text, none of them missing or blank."""
    where = f"{report.where}: column {column!r} ({role})"
    if not (_is_list(values.type) and _is_text(values.type.value_type)):
        report.error(f"{where} must hold a list of texts per row (the row's candidates), but its type is "
                     f"{values.type}; store lists in a json(l), parquet or arrow file")
        return
    missing = np.asarray(values.is_null())
    if missing.any():
        report.error(f"{where} has {int(missing.sum())} missing values, at {_rows(missing)}; drop or fill those rows")
        return
    empty = np.asarray(pc.list_value_length(values)) == 0
    if empty.any():
        report.error(f"{where} has {int(empty.sum())} empty lists, at {_rows(empty)}; each row needs at least one "
                     f"text: drop those rows")
    texts = pc.list_flatten(values)
    row_of_text = np.asarray(pc.list_parent_indices(values))
    bad = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(texts), ""), True))  # missing or blank
    if bad.any():
        in_rows = np.zeros(len(values), dtype=bool)
        in_rows[row_of_text[bad]] = True
        report.error(f"{where} has {int(bad.sum())} missing or empty texts in its lists, at {_rows(in_rows)}; drop "
                     f"or fill them")


def _check_list_scores(report: DatasetReport, values: pa.ChunkedArray, column: str, lists: pa.ChunkedArray,
                       lists_column: str) -> None:
    """A `list_scores` label: every row a list of finite numbers, one per entry of the row's list input."""
    where = f"{report.where}: label column {column!r}"
    if not (_is_list(values.type) and _is_number(values.type.value_type)):
        report.error(f"{where} must hold a list of numbers per row, one score per entry of column {lists_column!r}, "
                     f"but its type is {values.type}; store lists in a json(l), parquet or arrow file")
        return
    missing = np.asarray(values.is_null())
    if missing.any():
        report.error(f"{where} has {int(missing.sum())} missing values, at {_rows(missing)}")
        return
    scores = np.asarray(pc.list_flatten(values).cast(pa.float64()).fill_null(np.nan))
    row_of_score = np.asarray(pc.list_parent_indices(values))
    not_finite = np.zeros(len(values), dtype=bool)
    not_finite[row_of_score[~np.isfinite(scores)]] = True
    if not_finite.any():
        report.error(f"{where} must hold finite numbers; {int(not_finite.sum())} rows do not, at {_rows(not_finite)}")
    if not (_is_list(lists.type) and not lists.null_count):
        return  # the list input's own check reports it
    score_counts = np.asarray(pc.list_value_length(values))
    text_counts = np.asarray(pc.list_value_length(lists))
    differ = np.flatnonzero(score_counts != text_counts)
    if len(differ):
        shown = "; ".join(f"row {row}: {lists_column} has {text_counts[row]} entries but {column} has "
                          f"{score_counts[row]}" for row in differ[:ROWS_SHOWN])
        more = ", ..." if len(differ) > ROWS_SHOWN else ""
        report.error(f"{where} must hold one score per entry of column {lists_column!r}; {len(differ)} rows do not "
                     f"({shown}{more})")


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _is_number(arrow_type: pa.DataType) -> bool:
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)


def _check_label(report: DatasetReport, values: pa.ChunkedArray, column: str) -> None:
    contract, where = report.contract, f"{report.where}: label column {column!r}"
    kind = contract.label
    if kind in LIST_LABEL_KINDS and _is_list(values.type):
        _check_list_label(report, values, column)
        return
    if kind == "embedding":
        report.error(f"{where} must hold a list of numbers per row (a teacher embedding), but its type is "
                     f"{values.type}; store it in a json(l), parquet or arrow file")
        return
    if values.null_count:
        report.error(f"{where} has {values.null_count} missing values, at {_rows(np.asarray(values.is_null()))}")
        return
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type)):
        report.error(f"{where} must be numeric ({kind} label), but its type is {values.type}")
        return
    labels = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(labels)
    expectation = {"score": "finite numbers", "scores": "finite numbers", "class": "non-negative integers",
                   "binary": "0 or 1"}[kind]
    if kind in ("class", "binary"):
        bad |= labels != np.round(labels)
    if kind == "binary":
        bad |= (labels != 0) & (labels != 1)
    if kind == "class":
        bad |= labels < 0
        if contract.num_classes is not None:
            bad |= labels >= contract.num_classes
            expectation = f"integers from 0 to {contract.num_classes - 1} (num_labels is {contract.num_classes})"
    if contract.label_range is not None:
        low, high = contract.label_range
        bad |= (labels < low) | (labels > high)
        expectation = f"numbers between {low} and {high}"
    if bad.any():
        shown = labels[np.flatnonzero(bad)[:ROWS_SHOWN]].tolist()
        report.error(f"{where} must hold {expectation}; {int(bad.sum())} rows do not, at {_rows(bad)} "
                     f"(values {shown})")


def _is_list(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def _check_list_label(report: DatasetReport, values: pa.ChunkedArray, column: str) -> None:
    """Every row a list of finite numbers of one shape (one level; two for per-column teacher embeddings)."""
    kind, where = report.contract.label, f"{report.where}: label column {column!r}"
    rows = values.to_pylist()
    missing = np.array([row is None for row in rows])
    if missing.any():
        report.error(f"{where} has {int(missing.sum())} missing values, at {_rows(missing)}")
        return
    try:
        labels = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError):  # ragged, or not numbers
        lengths = sorted({len(row) for row in rows})
        report.error(f"{where} must hold lists of numbers of one length in every row ({kind}), "
                     f"but found lengths {lengths[:10]}")
        return
    if labels.ndim not in (2, 3) or (kind == "scores" and labels.ndim != 2) or labels.shape[-1] == 0:
        per_column = " (or a list of one list per input column)" if kind == "embedding" else ""
        report.error(f"{where} has rows of shape {labels.shape[1:]}, but {kind} labels are a list of numbers per "
                     f"row{per_column}")
        return
    bad = ~np.isfinite(labels.reshape(len(labels), -1)).all(axis=1)
    if bad.any():
        report.error(f"{where} must hold finite numbers; {int(bad.sum())} rows do not, at {_rows(bad)}")


def _duplicate_share(values: pa.ChunkedArray) -> float:
    return 1.0 - len(pc.unique(values)) / len(values)


def _check_duplicates(report: DatasetReport, data: LoadedData, batching: Batching | None) -> None:
    """Duplicates are false negatives for in-batch-negative losses: the same text counted as another row's negative,
    unless the batches keep equal texts apart (batch_sampler no_duplicates), which then needs as many batches as
    the rows that share a text."""
    columns = dict(data.mapping.inputs)
    anchors = data.rows.data.column(columns["anchor"])
    positives = data.rows.data.column(columns["positive"])
    report.duplicates = {
        "duplicate_anchors": _duplicate_share(anchors),
        "duplicate_positives": _duplicate_share(positives),
        "anchor_equals_positive": float(np.asarray(pc.equal(anchors, positives)).mean()),
    }
    same = np.asarray(pc.equal(anchors, positives))
    # One column in both roles is SimCSE by intent: dropout makes the two views of a text differ.
    if same.any() and columns["anchor"] != columns["positive"]:
        report.warning(f"{report.where}: {int(same.sum())} rows have the anchor equal to the positive (at {_rows(same)}); "
                       f"they teach nothing, unless dropout makes the two differ (SimCSE): then map one column to "
                       f"both, e.g. columns: {{anchor: {columns['anchor']}, positive: {columns['anchor']}}}")
    duplicated = [f"{share:.1%} {name.replace('_', ' ')}" for name, share in report.duplicates.items()
                  if name != "anchor_equals_positive" and share > DUPLICATE_WARNING_RATE]
    if not duplicated:
        return
    if batching is not None and batching.sampler == "no_duplicates":
        _check_batches_kept_apart(report, data, batching.batch_size)
        return
    if batching is not None and batching.sampler == "in_order":
        advice = ("eval batches take the rows in order (training.batch_sampler applies to training only), so the "
                  "eval loss counts them; deduplicate the data, or read the eval loss as pessimistic")
    else:
        now = f" (now {batching.sampler})" if batching is not None else ""
        advice = f"use training.batch_sampler: no_duplicates{now}, which keeps equal texts out of the same batch"
    report.warning(f"{report.where}: {' and '.join(duplicated)}: in-batch negatives can then be false negatives; "
                   f"{advice}")


def _check_batches_kept_apart(report: DatasetReport, data: LoadedData, batch_size: int) -> None:
    """no_duplicates puts the rows sharing a text in different batches: when one text is in more rows than an epoch
    has batches, the sampler makes as many batches as that text has rows, the extra ones smaller than batch_size
    (fewer in-batch negatives, more steps)."""
    from embedtrain.data.samplers import text_keys  # the sampler's own keys; imported here: it imports torch, and the
    # command line imports this module at startup (`embedtrain --version` loads no torch)

    keys = text_keys([data.rows.data.column(column) for column in data.mapping.input_columns])
    rows_of_key = np.unique(np.stack([np.repeat(np.arange(len(keys)), keys.shape[1]), keys.ravel()]), axis=1)[1]
    counts = np.bincount(rows_of_key)
    most, needed = int(counts.max()), -(-len(keys) // batch_size)
    if most <= needed:
        return
    row, column = np.argwhere(keys == counts.argmax())[0]
    text = str(data.rows[int(row)][data.mapping.input_columns[column]])
    shown = text if len(text) <= 60 else text[:57] + "..."
    report.warning(f"{report.where}: {most} rows share the text {shown!r}: batch_sampler no_duplicates keeps them in "
                   f"different batches (no false negatives), so an epoch takes at least {most} batches where "
                   f"{needed} batches of {batch_size} would hold the {len(keys)} rows, and the extra ones are smaller (fewer "
                   f"in-batch negatives per row); fewer rows per text, or a smaller batch_size, evens them out")


def _check_lengths(report: DatasetReport, data: LoadedData, tokenization: Tokenization) -> None:
    if report.contract.scored_as_pairs:
        _check_pair_lengths(report, data, tokenization)
        return
    sample = data.rows.select(range(min(TOKEN_SAMPLE, len(data.rows))))
    for role, column in data.mapping.inputs:
        ids = tokenization.tokenizer(list(sample[column]), add_special_tokens=True, truncation=False)["input_ids"]
        lengths = np.array([len(row) for row in ids])
        truncated = _record_lengths(report, column, lengths, tokenization)
        if truncated > TRUNCATION_WARNING_RATE:
            report.warning(f"{report.where}: {truncated:.1%} of column {column!r} ({role}) is longer than "
                           f"max_seq_length {tokenization.max_seq_length} tokens and will be truncated "
                           f"(longest: {int(lengths.max())}); raise model.max_seq_length if the end matters")


def _check_pair_lengths(report: DatasetReport, data: LoadedData, tokenization: Tokenization) -> None:
    """A cross-encoder reads (first input, other text) pairs as one sequence: the pair's length is what is truncated.
    Measured on the first TOKEN_SAMPLE pairs of each other input (of a list input: its entries, row after row)."""
    sample = data.rows.select(range(min(TOKEN_SAMPLE, len(data.rows))))
    (first_role, first_column), *others = data.mapping.inputs
    firsts = list(sample[first_column])
    for role, column in others:
        values = list(sample[column])
        if role == report.contract.list_input:
            pairs = [(first, text) for first, texts in zip(firsts, values) for text in texts][:TOKEN_SAMPLE]
        else:
            pairs = list(zip(firsts, values))
        ids = tokenization.tokenizer([first for first, _ in pairs], [second for _, second in pairs],
                                     add_special_tokens=True, truncation=False)["input_ids"]
        lengths = np.array([len(row) for row in ids])
        truncated = _record_lengths(report, f"{first_column}+{column}", lengths, tokenization)
        if truncated > TRUNCATION_WARNING_RATE:
            report.warning(f"{report.where}: {truncated:.1%} of the pairs ({first_column!r}, {column!r}) "
                           f"({first_role}, {role}) are longer than max_seq_length {tokenization.max_seq_length} tokens "
                           f"together and will be truncated (longest: {int(lengths.max())}); raise "
                           f"model.max_seq_length if the ends matter")


def _record_lengths(report: DatasetReport, name: str, lengths: np.ndarray, tokenization: Tokenization) -> float:
    """Store the token statistics of `lengths` under `name`; return the share longer than max_seq_length."""
    truncated = float((lengths > tokenization.max_seq_length).mean())
    report.token_stats[name] = TokenStats(
        sampled=len(lengths), minimum=int(lengths.min()), mean=float(lengths.mean()),
        p95=int(np.percentile(lengths, 95)), maximum=int(lengths.max()), truncated=truncated)
    return truncated

"""The (query, positive) pairs to mine for, and the corpus the negatives come from.

Rows are (anchor, positive) pairs, or labelled pairs (anchor, text, label 0/1) whose label-1 rows are the positive
pairs. A query is each distinct anchor text; its positives are its distinct positive texts, in the order they first
appear. A query that appears only in label-0 rows has no positive: it is counted and skipped. The corpus is the
distinct texts of `--corpus` followed by the positives it lacks (without `--corpus`: the positives), as in the
reference: every positive is a candidate, so that a query's positives can be recognised and never kept as negatives.
"""

from dataclasses import dataclass

from datasets import Dataset

from embedtrain.data.checks import DatasetReport, LoadedData, Tokenization, inspect_rows, raise_on_errors
from embedtrain.data.contract import LABEL_COLUMN_NAMES, ColumnContract, ColumnMapping, resolve_columns
from embedtrain.data.source import DataSource, load_source
from embedtrain.errors import DataError, RecipeError

PAIRS = ColumnContract(inputs=("anchor", "positive"))
LABELLED_PAIRS = ColumnContract(inputs=("anchor", "positive"), label="binary")
CORPUS = ColumnContract(inputs=("text",))


@dataclass(frozen=True)
class PairRows:
    """The columns of the pairs data as read: `labels` is None for plain pairs."""

    anchors: list[str]
    positives: list[str]
    labels: list[int] | None
    anchor_column: str
    positive_column: str
    label_column: str | None


@dataclass(frozen=True)
class MiningInput:
    """Queries, their positives (corpus rows) and the corpus, deduplicated."""

    queries: list[str]
    """Distinct anchors with at least one positive, in the order they first appear."""
    positives: list[list[int]]
    """Per query: the corpus rows of its distinct positives, in the order they first appear."""
    positive_rows: list[int]
    """Per query: its positive rows in the data, repeated pairs included (the reference sizes the candidate pool by
    the largest of these)."""
    corpus: list[str]
    queries_without_positive: int
    anchor_column: str
    positive_column: str

    @property
    def most_positives(self) -> int:
        return max(self.positive_rows)


def inspect_pairs(config: DataSource, where: str, tokenization: Tokenization | None = None
                  ) -> tuple[DatasetReport, PairRows | None]:
    """Read and check the pairs `config` names: two text columns (anchor, positive) by position or by `columns`,
    plus a 0/1 label column when the data has one (by name, or `columns: {label: ...}`). Never raises DataError: the
    report holds every problem (naming `where`), and the pairs are None when there is one. `tokenization` adds the
    token-length statistics."""
    report = DatasetReport(where=where, source=config.source, contract=PAIRS)
    try:
        rows = load_source(config, where)
        label_named = any(name in rows.column_names and name not in config.ignored_columns()
                          for name in LABEL_COLUMN_NAMES)
        report.contract = LABELLED_PAIRS if ("label" in config.columns if config.columns is not None
                                             else label_named) else PAIRS
        report.row_count = len(rows)
        report.mapping = resolve_columns(rows.column_names, report.contract, config.columns, config.ignored_columns(),
                                         where)
    except DataError as error:
        report.error(str(error))
        return report, None
    inspect_rows(report, LoadedData(rows, report.mapping), tokenization)
    if report.errors:
        return report, None
    columns, label = dict(report.mapping.inputs), report.mapping.label
    return report, PairRows(list(rows[columns["anchor"]]), list(rows[columns["positive"]]),
                            [int(value) for value in rows[label]] if label else None, columns["anchor"],
                            columns["positive"], label)


def load_pairs(config: DataSource, where: str) -> PairRows:
    """The pairs `config` names (see `inspect_pairs`); DataError listing every problem."""
    report, pairs = inspect_pairs(config, where)
    raise_on_errors([report])
    return pairs


def load_corpus(config: DataSource, column: str | None, where: str, column_option: str = "--corpus-column") -> list[str]:
    """The texts of one column of `config` (`column`, or the only column; `column_option` names where to set it).
    DataError naming `where` otherwise."""
    rows = load_source(config, where)
    if column is None:
        if len(rows.column_names) != 1:
            raise RecipeError(f"{where}: the corpus has columns {rows.column_names}; name the one holding the texts "
                              f"with {column_option}")
        column = rows.column_names[0]
    others = [name for name in rows.column_names if name != column]
    config = config.model_copy(update={"columns": {"text": column}, "ignore_columns": others})
    _checked_mapping(rows, config, CORPUS, where)
    return list(rows[column])


def _checked_mapping(rows: Dataset, config: DataSource, contract: ColumnContract, where: str) -> ColumnMapping:
    """Match the columns to `contract` and check every text and label; one DataError listing every problem."""
    report = DatasetReport(where=where, source=config.source, contract=contract, row_count=len(rows))
    report.mapping = resolve_columns(rows.column_names, contract, config.columns, config.ignored_columns(), where)
    inspect_rows(report, LoadedData(rows, report.mapping), None)
    raise_on_errors([report])
    return report.mapping


def prepare_input(pairs: PairRows, corpus: list[str] | None = None) -> MiningInput:
    """Deduplicate queries, positives and corpus; DataError when no query has a positive."""
    keep = [label == 1 for label in pairs.labels] if pairs.labels is not None else [True] * len(pairs.anchors)
    positive_texts = [text for text, kept in zip(pairs.positives, keep) if kept]
    corpus_texts = list(dict.fromkeys((corpus or []) + positive_texts))
    corpus_row = {text: row for row, text in enumerate(corpus_texts)}
    by_query: dict[str, list[int]] = {}
    row_counts: dict[str, int] = {}
    for anchor, positive, kept in zip(pairs.anchors, pairs.positives, keep):
        if kept:
            rows = by_query.setdefault(anchor, [])
            if corpus_row[positive] not in rows:
                rows.append(corpus_row[positive])
            row_counts[anchor] = row_counts.get(anchor, 0) + 1
    without = len(set(pairs.anchors) - set(by_query))
    if not by_query:
        raise DataError(f"no query has a positive: none of the {len(pairs.anchors)} rows has label 1 (column "
                        f"{pairs.positive_column!r} holds the positives of label-1 rows)")
    queries = list(by_query)
    return MiningInput(queries, [by_query[query] for query in queries], [row_counts[query] for query in queries],
                       corpus_texts, without, pairs.anchor_column, pairs.positive_column)

"""Which dataset columns feed which input of a loss or evaluator, and whether the data fits.

A loss or evaluator declares a `ColumnContract`: its text inputs in order, an optional input that
may repeat (hard negatives), and the label it needs. `resolve_columns` matches a dataset's
columns to that contract, either from an explicit mapping in the recipe (`columns:`) or, without
one, the way the reference does (label by name, inputs by position) but refusing every case the
reference silently accepts: extra columns, a label column the loss would ignore, a wrong count.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
from datasets import Dataset

from embedtrain.errors import DataError, did_you_mean

LabelKind = Literal["score", "class", "binary", "scores", "embedding"]
"""`score`: a finite float per row; `class`: an integer class id; `binary`: 0 or 1;
`scores`: a list of k finite floats per row (k the same for every row), or one float per row;
`embedding`: a list of d finite floats per row (a teacher embedding), or a list of one such list
per input column. The collator turns list labels into a float32 tensor (batch, k) or (batch, columns, d)."""

LIST_LABEL_KINDS = ("scores", "embedding")

LABEL_COLUMN_NAMES = ("label", "labels", "score", "scores")
"""Columns taken as the label when no mapping is given, in this order (as the reference does)."""

LABEL_ROLE = "label"


@dataclass(frozen=True)
class ColumnContract:
    """What a loss or evaluator reads from each row.

    inputs: the text inputs, in the order they are consumed (e.g. anchor, positive).
    repeated_input: an input that may follow `inputs` any number of times (e.g. `negative`);
        in a recipe it maps to a list of columns.
    label: the label needed, or None.
    """

    inputs: tuple[str, ...]
    repeated_input: str | None = None
    label: LabelKind | None = None

    @property
    def roles(self) -> tuple[str, ...]:
        """Every key a `columns:` mapping may use."""
        roles = self.inputs + ((self.repeated_input,) if self.repeated_input else ())
        return roles + ((LABEL_ROLE,) if self.label else ())

    def describe(self) -> str:
        names = list(self.inputs)
        if self.repeated_input:
            names.append(f"{self.repeated_input}...")
        text = ", ".join(names)
        return f"{text} + {self.label} label" if self.label else text


@dataclass(frozen=True)
class ColumnMapping:
    """The resolved mapping: `inputs` as (role, dataset column) in the order the loss consumes them."""

    inputs: tuple[tuple[str, str], ...]
    label: str | None
    inferred: bool

    @property
    def input_columns(self) -> list[str]:
        return [column for _, column in self.inputs]

    def describe(self) -> str:
        pairs = [f"{role}={column}" for role, column in self.inputs]
        if self.label:
            pairs.append(f"{LABEL_ROLE}={self.label}")
        return ", ".join(pairs)


def resolve_columns(
    columns: list[str],
    contract: ColumnContract,
    mapping: dict[str, str | list[str]] | None,
    ignore_columns: list[str],
    where: str,
) -> ColumnMapping:
    """Match `columns` (in dataset order) to `contract`; raise DataError naming `where` on any mismatch."""
    for column in ignore_columns:
        if column not in columns:
            raise DataError(f"{where}: ignore_columns names {column!r}, which is not a column of the data "
                            f"(columns: {columns}){did_you_mean(column, columns)}")
    usable = [c for c in columns if c not in ignore_columns]
    if mapping is None:
        return _infer_mapping(usable, contract, where)
    return _explicit_mapping(usable, contract, mapping, where)


def _explicit_mapping(
    columns: list[str], contract: ColumnContract, mapping: dict[str, str | list[str]], where: str
) -> ColumnMapping:
    problems = []
    for role, value in mapping.items():
        if role not in contract.roles:
            problems.append(f"'{role}' is not an input of this loss/evaluator{did_you_mean(role, list(contract.roles))}; "
                            f"it takes: {', '.join(contract.roles)}")
            continue
        if isinstance(value, list) and role != contract.repeated_input:
            problems.append(f"'{role}' takes a single column, got a list {value}")
        for column in value if isinstance(value, list) else [value]:
            if column not in columns:
                problems.append(f"'{role}' maps to column {column!r}, which the data does not have"
                                f"{did_you_mean(column, columns)} (columns: {columns})")
    for role in contract.inputs:
        if role not in mapping:
            problems.append(f"input '{role}' is not mapped to a column")
    if contract.label and LABEL_ROLE not in mapping:
        problems.append(f"the {contract.label} label is not mapped to a column (add `{LABEL_ROLE}: <column>`)")
    if problems:
        raise DataError(f"{where}.columns: " + "; ".join(problems))

    inputs = [(role, mapping[role]) for role in contract.inputs]
    repeated = mapping.get(contract.repeated_input, []) if contract.repeated_input else []
    for index, column in enumerate(repeated if isinstance(repeated, list) else [repeated], start=1):
        inputs.append((f"{contract.repeated_input}_{index}", column))
    label = mapping.get(LABEL_ROLE) if contract.label else None
    used = {column for _, column in inputs} | {label}
    unused = [c for c in columns if c not in used]
    if unused:
        raise DataError(f"{where}: columns {unused} are neither mapped nor ignored; embedtrain never uses a column "
                        f"silently. Map them in `columns:` or list them in `ignore_columns:`.")
    return ColumnMapping(inputs=tuple(inputs), label=label, inferred=False)


def _infer_mapping(columns: list[str], contract: ColumnContract, where: str) -> ColumnMapping:
    label = next((c for c in LABEL_COLUMN_NAMES if c in columns), None)
    if contract.label and label is None:
        raise DataError(f"{where}: the loss/evaluator needs a {contract.label} label but the data has no column named "
                        f"{' / '.join(LABEL_COLUMN_NAMES)} (columns: {columns}). Add `columns:` with `{LABEL_ROLE}: <column>`.")
    if not contract.label and label is not None:
        raise DataError(f"{where}: column {label!r} looks like a label, but this loss/evaluator takes no label, so it would "
                        f"be ignored. If that is intended, list it in `ignore_columns:`; otherwise choose a loss that uses it.")
    text_columns = [c for c in columns if c != label]
    needed = len(contract.inputs)
    count_ok = len(text_columns) >= needed if contract.repeated_input else len(text_columns) == needed
    if not count_ok:
        expected = f"at least {needed}" if contract.repeated_input else str(needed)
        raise DataError(f"{where}: expected {expected} text columns ({contract.describe()}) but found "
                        f"{len(text_columns)}: {text_columns}. Map them explicitly with `columns:` and drop the others "
                        f"with `ignore_columns:`.")
    inputs = list(zip(contract.inputs, text_columns))
    for index, column in enumerate(text_columns[needed:], start=1):
        inputs.append((f"{contract.repeated_input}_{index}", column))
    return ColumnMapping(inputs=tuple(inputs), label=label if contract.label else None, inferred=True)


def check_rows(dataset: Dataset, mapping: ColumnMapping, contract: ColumnContract, where: str) -> None:
    """Reject empty data, text columns holding non-strings or nulls, and labels of the wrong kind."""
    if len(dataset) == 0:
        raise DataError(f"{where}: the dataset has no rows")
    for role, column in mapping.inputs:
        values = dataset.data.column(column)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            raise DataError(f"{where}: column {column!r} ({role}) must hold text, but its type is {values.type}")
        nulls = values.null_count
        if nulls:
            first = _first_rows(np.asarray(values.is_null()))
            raise DataError(f"{where}: column {column!r} ({role}) has {nulls} empty (null) values, first at rows {first}")
    if mapping.label:
        _check_label(dataset, mapping.label, contract.label, where)


def _first_rows(mask: np.ndarray, count: int = 5) -> list[int]:
    return np.flatnonzero(mask)[:count].tolist()


def _check_label(dataset: Dataset, column: str, kind: LabelKind, where: str) -> None:
    values = dataset.data.column(column)
    if kind in LIST_LABEL_KINDS and _is_list(values.type):
        _check_list_label(values, column, kind, where)
        return
    if kind == "embedding":
        raise DataError(f"{where}: label column {column!r} must hold a list of numbers per row (a teacher embedding), "
                        f"but its type is {values.type}; store it in a json(l), parquet or arrow file")
    if values.null_count:
        raise DataError(f"{where}: label column {column!r} has {values.null_count} empty values, first at rows "
                        f"{_first_rows(np.asarray(values.is_null()))}")
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type)):
        raise DataError(f"{where}: label column {column!r} must be numeric ({kind}), but its type is {values.type}")
    labels = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(labels)
    if kind in ("class", "binary"):
        bad |= labels != np.round(labels)
    if kind == "binary":
        bad |= (labels != 0) & (labels != 1)
    if kind == "class":
        bad |= labels < 0
    if bad.any():
        rows = _first_rows(bad)
        expectation = {"score": "finite numbers", "scores": "finite numbers", "class": "non-negative integers",
                       "binary": "0 or 1"}[kind]
        raise DataError(f"{where}: label column {column!r} must hold {expectation}; {int(bad.sum())} rows do not, "
                        f"first at rows {rows} (values {labels[rows].tolist()})")



def _is_list(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def _check_list_label(values: pa.ChunkedArray, column: str, kind: LabelKind, where: str) -> None:
    """Every row a list of the same shape of finite numbers (one level, or two for per-column embeddings)."""
    rows = values.to_pylist()
    null_rows = [index for index, row in enumerate(rows) if row is None]
    if null_rows:
        raise DataError(f"{where}: label column {column!r} has {len(null_rows)} empty values, first at rows {null_rows[:5]}")
    try:
        labels = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError):  # ragged, or not numbers
        lengths = sorted({len(row) for row in rows})
        raise DataError(f"{where}: label column {column!r} must hold lists of numbers of one length in every row "
                        f"({kind}), but found lengths {lengths[:10]}") from None
    if labels.ndim not in (2, 3) or (kind == "scores" and labels.ndim != 2) or labels.shape[-1] == 0:
        raise DataError(f"{where}: label column {column!r} has rows of shape {labels.shape[1:]}, but {kind} labels are "
                        f"a list of numbers per row" + (" (or a list of one list per input column)" if kind == "embedding" else ""))
    bad = ~np.isfinite(labels.reshape(len(labels), -1)).all(axis=1)
    if bad.any():
        raise DataError(f"{where}: label column {column!r} must hold finite numbers; {int(bad.sum())} rows do not, "
                        f"first at rows {_first_rows(bad)}")

"""Which dataset columns feed which input of a loss or evaluator, and whether the data fits.

A loss or evaluator declares a `ColumnContract`: its text inputs in order, an optional input that
may repeat (hard negatives), and the label it needs. `resolve_columns` matches a dataset's
columns to that contract, either from an explicit mapping in the recipe (`columns:`) or, without
one, the way the reference does (label by name, inputs by position) but refusing every case the
reference silently accepts: extra columns, a label column the loss would ignore, a wrong count.
"""

from dataclasses import dataclass
from typing import Literal

from embedtrain.errors import DataError, did_you_mean

LabelKind = Literal["score", "class", "binary", "scores", "embedding", "list_scores"]
"""`score`: a finite float per row; `class`: an integer class id; `binary`: 0 or 1;
`scores`: a list of k finite floats per row (k the same for every row), or one float per row;
`embedding`: a list of d finite floats per row (a teacher embedding), or a list of one such list
per input column. The collator turns these list labels into a float32 tensor (batch, k) or (batch, columns, d).
`list_scores`: a list of finite floats per row with one score per entry of that row's list input (its
documents), so of varying length; losses receive them as one list per row."""

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
    num_classes: int | None = None  # a `class` label must be below this
    label_range: tuple[float, float] | None = None  # a `score` label must lie within this
    in_batch_negatives: bool = False  # other rows of the batch are negatives: duplicates hurt
    label_refusal: str | None = None
    """Without a label: why a label column cannot be used and how to fix that (e.g. a teacher model computes the
    targets), for the error when the data has one; the generic message otherwise."""
    list_input: str | None = None
    """One of `inputs` whose value per row is a list of texts, of any length from 1 (a query's candidate documents)."""
    scored_as_pairs: bool = False
    """The model reads each row as pairs (first input, each other text of the row), not text by text (a
    cross-encoder): the length that gets truncated is the pair's."""

    @property
    def roles(self) -> tuple[str, ...]:
        """Every key a `columns:` mapping may use."""
        roles = self.inputs + ((self.repeated_input,) if self.repeated_input else ())
        return roles + ((LABEL_ROLE,) if self.label else ())

    def base_input(self, role: str) -> str:
        """negative_2 -> negative: the declared input a resolved role belongs to (itself for a plain input)."""
        repeated = self.repeated_input
        return repeated if repeated and role.startswith(f"{repeated}_") else role

    def describe(self) -> str:
        names = [f"[{name}]" if name == self.list_input else name for name in self.inputs]
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
        if role == LABEL_ROLE and contract.label_refusal:
            problems.append(f"'{LABEL_ROLE}' maps to column {value!r}, but {contract.label_refusal}")
            continue
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
    if not contract.label and label is not None and contract.label_refusal:
        raise DataError(f"{where}: column {label!r} looks like a label, but {contract.label_refusal}")
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
    for role, column in inputs:
        # A column named after another input (e.g. 'positive' first) would silently swap the inputs.
        named_role = column if column in contract.inputs or column == contract.repeated_input else None
        if named_role is not None and not role.startswith(named_role):
            raise DataError(f"{where}: by position, column {column!r} would feed input {role!r}; the columns are in "
                            f"the wrong order for {contract.describe()}. Map them with `columns:`.")
    return ColumnMapping(inputs=tuple(inputs), label=label if contract.label else None, inferred=True)

"""Row checks against a column contract: every problem is found, named with its column and rows, and none is fatal
before all are collected.

Errors (training refuses to start): no rows, non-text inputs, missing or blank texts, labels that are
missing, non-numeric, or outside what the loss accepts. Warnings: duplicates for in-batch-negative
losses, texts longer than the model's maximum length.
"""

import math

import pytest
from datasets import Dataset

from embedtrain.data.checks import Batching, DatasetReport, LoadedData, Tokenization, inspect_rows, raise_on_errors
from embedtrain.data.contract import ColumnContract, resolve_columns
from embedtrain.errors import DataError

WHERE = "datasets.train.mine"
PAIR_SCORE = ColumnContract(inputs=("sentence1", "sentence2"), label="score")
PAIR_COSINE = ColumnContract(inputs=("sentence1", "sentence2"), label="score", label_range=(-1.0, 1.0))
PAIR_CLASS = ColumnContract(inputs=("sentence1", "sentence2"), label="class", num_classes=3)
PAIR_BINARY = ColumnContract(inputs=("sentence1", "sentence2"), label="binary")
MNRL = ColumnContract(inputs=("anchor", "positive"), repeated_input="negative", in_batch_negatives=True)


def report_for(data: dict, contract: ColumnContract, tokenization: Tokenization | None = None,
               batching: Batching | None = None) -> DatasetReport:
    rows = Dataset.from_dict(data)
    mapping = resolve_columns(rows.column_names, contract, None, [], WHERE)
    report = DatasetReport(where=WHERE, source="test", contract=contract, row_count=len(rows), mapping=mapping)
    inspect_rows(report, LoadedData(rows, mapping), tokenization, batching)
    return report


VALID = {
    "scores": ({"a": ["x", "y"], "b": ["z", "w"], "score": [0.0, 1.5]}, PAIR_SCORE),
    "integer scores": ({"a": ["x", "y"], "b": ["z", "w"], "score": [0, 5]}, PAIR_SCORE),
    "cosine scores at the bounds": ({"a": ["x", "y"], "b": ["z", "w"], "score": [-1.0, 1.0]}, PAIR_COSINE),
    "classes": ({"a": ["x", "y", "z"], "b": ["z", "w", "v"], "label": [0, 2, 1]}, PAIR_CLASS),
    "classes as floats": ({"a": ["x", "y"], "b": ["z", "w"], "label": [0.0, 2.0]}, PAIR_CLASS),
    "binary booleans": ({"a": ["x", "y"], "b": ["z", "w"], "label": [True, False]}, PAIR_BINARY),
    "hard negatives": ({"q": ["x", "y"], "p": ["z", "w"], "n": ["v", "u"]}, MNRL),
}


@pytest.mark.parametrize(("data", "contract"), VALID.values(), ids=VALID.keys())
def test_valid_rows_have_no_finding(data, contract):
    assert report_for(data, contract).findings == []


INVALID = {
    "no rows": ({"a": [], "b": [], "score": []}, PAIR_SCORE, "the dataset has no rows"),
    "missing texts": ({"a": ["x", None, "y", None], "b": ["1", "2", "3", "4"], "score": [0.1] * 4}, PAIR_SCORE,
                      "column 'a' (sentence1) has 2 missing values, at rows 1, 3"),
    "missing hard negative": ({"q": ["x", "y"], "p": ["z", "w"], "n": [None, "v"]}, MNRL,
                              "column 'n' (negative_1) has 1 missing values, at row 0"),
    "blank texts": ({"a": ["x", " ", ""], "b": ["z", "w", "v"], "score": [0.1] * 3}, PAIR_SCORE,
                    "column 'a' (sentence1) has 2 empty texts, at rows 1, 2"),
    "numbers as text": ({"a": [1, 2], "b": ["x", "y"], "score": [0.1, 0.2]}, PAIR_SCORE,
                        "column 'a' (sentence1) must hold text, but its type is int64"),
    "lists as text": ({"q": [["x"], ["y"]], "p": ["x", "y"]}, MNRL, "column 'q' (anchor) must hold text"),
    "text label": ({"a": ["x", "y"], "b": ["z", "w"], "score": ["0.1", "high"]}, PAIR_SCORE,
                   "label column 'score' must be numeric (score label), but its type is string"),
    "missing label": ({"a": ["x", "y"], "b": ["z", "w"], "score": [None, 0.5]}, PAIR_SCORE,
                      "label column 'score' has 1 missing values, at row 0"),
    "fractional class": ({"a": ["x", "y"], "b": ["z", "w"], "label": [1.0, 0.5]}, PAIR_CLASS,
                         "must hold integers from 0 to 2 (num_labels is 3); 1 rows do not, at row 1 (values [0.5])"),
    "class beyond num_labels": ({"a": ["x", "y"], "b": ["z", "w"], "label": [3, 1]}, PAIR_CLASS,
                                "(num_labels is 3); 1 rows do not, at row 0 (values [3.0])"),
    "negative class": ({"a": ["x", "y"], "b": ["z", "w"], "label": [-1, 1]}, PAIR_CLASS, "at row 0 (values [-1.0])"),
    "binary 2": ({"a": ["x", "y", "z"], "b": ["z", "w", "v"], "label": [0, 2, 1]}, PAIR_BINARY,
                 "must hold 0 or 1; 1 rows do not, at row 1 (values [2.0])"),
    "non-finite score": ({"a": ["x", "y", "z"], "b": ["z", "w", "v"], "score": [0.1, math.nan, -math.inf]},
                         PAIR_SCORE, "must hold finite numbers; 2 rows do not, at rows 1, 2"),
    "score outside the cosine's range": ({"a": ["x", "y"], "b": ["z", "w"], "score": [0.5, 5.0]}, PAIR_COSINE,
                                         "must hold numbers between -1.0 and 1.0; 1 rows do not, at row 1"),
}


@pytest.mark.parametrize(("data", "contract", "message"), INVALID.values(), ids=INVALID.keys())
def test_invalid_rows_are_errors_naming_column_and_rows(data, contract, message):
    errors = report_for(data, contract).errors
    assert len(errors) == 1 and errors[0].startswith(WHERE) and message in errors[0], errors


def test_every_problem_is_reported_not_only_the_first():
    data = {"a": ["x", None], "b": ["", "w"], "score": [math.nan, 0.5]}
    assert len(report_for(data, PAIR_SCORE).errors) == 3


def test_at_most_five_rows_are_listed():
    errors = report_for({"a": ["x"] * 20, "b": ["y"] * 20, "score": [math.nan, 0.5] * 10}, PAIR_SCORE).errors
    assert "10 rows do not, at rows 0, 2, 4, 6, 8, ..." in errors[0]


def test_raise_on_errors_lists_all_reports():
    first = report_for({"a": [None], "b": ["y"], "score": [0.1]}, PAIR_SCORE)
    second = report_for({"a": ["x"], "b": ["y"], "score": ["bad"]}, PAIR_SCORE)
    with pytest.raises(DataError) as raised:
        raise_on_errors([first, second], ["evaluators[0] (dev): a problem"])
    message = str(raised.value)
    assert message.startswith("3 data problems:") and "has no values at all" in message and "must be numeric" in message
    assert "evaluators[0] (dev): a problem" in message


def test_duplicates_are_warnings_for_in_batch_negative_losses():
    data = {"q": ["x", "x", "y", "z"], "p": ["a", "b", "y", "c"]}
    report = report_for(data, MNRL)
    assert report.errors == []
    assert report.duplicates == {"duplicate_anchors": 0.25, "duplicate_positives": 0.0, "anchor_equals_positive": 0.25}
    warnings = "\n".join(report.warnings)
    assert "1 rows have the anchor equal to the positive (at row 2)" in warnings
    assert "25.0% duplicate anchors" in warnings and "use training.batch_sampler: no_duplicates" in warnings
    assert report_for(data, ColumnContract(inputs=("anchor", "positive"))).warnings == []  # no in-batch negatives


def test_one_column_in_both_roles_is_simcse_not_a_mistake():
    """simcse.yaml's `columns: {anchor: sentence, positive: sentence}`: every anchor equals its positive on purpose."""
    rows = Dataset.from_dict({"sentence": ["x", "y", "z"]})
    mapping = resolve_columns(rows.column_names, MNRL, {"anchor": "sentence", "positive": "sentence"}, [], WHERE)
    report = DatasetReport(where=WHERE, source="test", contract=MNRL, row_count=3, mapping=mapping)
    inspect_rows(report, LoadedData(rows, mapping), None, None)
    assert report.duplicates["anchor_equals_positive"] == 1.0
    assert report.warnings == []
    # Two columns that happen to hold the same texts: the warning says how to ask for SimCSE.
    [warning] = report_for({"q": ["x", "y"], "p": ["x", "w"]}, MNRL).warnings
    assert "unless dropout makes the two differ (SimCSE)" in warning and "{anchor: q, positive: q}" in warning


DUPLICATED = {"q": ["x", "x", "y", "z"], "p": ["a", "b", "c", "d"]}


def test_the_duplicates_advice_follows_the_recipe_s_batch_sampler():
    [warning] = report_for(DUPLICATED, MNRL, batching=Batching("random", 2)).warnings
    assert "25.0% duplicate anchors" in warning and "use training.batch_sampler: no_duplicates (now random)" in warning
    # no_duplicates already keeps the two rows of "x" in different batches: nothing left to fix (2 batches of 2 hold
    # the 4 rows, and "x" needs only 2).
    assert report_for(DUPLICATED, MNRL, batching=Batching("no_duplicates", 2)).warnings == []
    # Eval batches are the rows in order: the training sampler does not apply, so it is not what is advised.
    [warning] = report_for(DUPLICATED, MNRL, batching=Batching("in_order", 2)).warnings
    assert "eval loss counts them" in warning and "no_duplicates" not in warning


def test_under_no_duplicates_a_text_in_more_rows_than_batches_is_what_is_left(tmp_path):
    from embedtrain.data.samplers import no_duplicate_batches, text_keys

    # One question with 5 answers among 8 rows: batches of 4 would hold the rows in 2, but no two of its rows may
    # share a batch; the negative "n" is in 2 rows, no more than the batches needed, and is not what is named.
    data = {"q": ["what"] * 5 + ["who", "where", "how"], "p": [f"answer {i}" for i in range(8)],
            "n": ["n", "n", "m1", "m2", "m3", "m4", "m5", "m6"]}
    [warning] = report_for(data, MNRL, batching=Batching("no_duplicates", 4)).warnings
    assert ("5 rows share the text 'what': batch_sampler no_duplicates keeps them in different batches (no false "
            "negatives), so an epoch takes at least 5 batches where 2 batches of 4 would hold the 8 rows") in warning
    rows = Dataset.from_dict(data)
    batches = no_duplicate_batches(list(range(8)), text_keys([rows.data.column(c) for c in ("q", "p", "n")]), 4)
    assert len(batches) == 5 and min(len(batch) for batch in batches) < 4  # what the warning says


def test_token_lengths_and_truncation(tiny_checkpoint):
    from transformers import AutoTokenizer

    tokenization = Tokenization(AutoTokenizer.from_pretrained(tiny_checkpoint), max_seq_length=6)
    data = {"a": ["a man", "a man plays the guitar in the park"], "b": ["x", "y"], "score": [0.1, 0.2]}
    report = report_for(data, PAIR_SCORE, tokenization)
    stats = report.token_stats["a"]
    assert (stats.minimum, stats.maximum, stats.truncated) == (4, 10, 0.5)  # [CLS] ... [SEP] included
    assert any("50.0% of column 'a' (sentence1) is longer than max_seq_length 6" in w for w in report.warnings)
    assert report.token_stats["b"].truncated == 0.0

"""Column contracts: which dataset columns feed which loss/evaluator input, and whether the rows fit.

Proven here:
- without a mapping, the label is found by name (label, labels, score, scores) wherever it sits and the
  inputs are taken by position; extra text columns become hard negatives only for contracts with a
  repeated input; ignore_columns removes columns before matching;
- an explicit mapping may order columns freely and maps the repeated input to a list;
- every mismatch raises DataError naming `where`: missing columns (did-you-mean), a wrong count, a label
  the loss would ignore, a missing label, unmapped extra columns, unknown ignore_columns, unknown roles.

The checks of the rows themselves are in test_checks.py.
"""

import pytest

from embedtrain.data.contract import ColumnContract, ColumnMapping, resolve_columns
from embedtrain.errors import DataError

WHERE = "datasets.train.mine"

PAIR_SCORE = ColumnContract(inputs=("sentence1", "sentence2"), label="score")  # CoSENT-like
PAIR_CLASS = ColumnContract(inputs=("sentence1", "sentence2"), label="class")  # Softmax-like
PAIR_BINARY = ColumnContract(inputs=("sentence1", "sentence2"), label="binary")
MNRL = ColumnContract(inputs=("anchor", "positive"), repeated_input="negative")
TRIPLET = ColumnContract(inputs=("anchor", "positive", "negative"))


def resolve(columns, contract, mapping=None, ignore=()):
    return resolve_columns(list(columns), contract, mapping, list(ignore), WHERE)


def data_error(function, *args, **kwargs) -> str:
    with pytest.raises(DataError) as raised:
        function(*args, **kwargs)
    message = str(raised.value)
    assert message.startswith(WHERE)
    return message


# Inferred mappings

INFERRED = {
    "label by name, last": (["s1", "s2", "score"], PAIR_SCORE, [("sentence1", "s1"), ("sentence2", "s2")], "score"),
    "label by name, first": (["label", "s1", "s2"], PAIR_CLASS, [("sentence1", "s1"), ("sentence2", "s2")], "label"),
    "label 'scores'": (["a", "scores", "b"], PAIR_SCORE, [("sentence1", "a"), ("sentence2", "b")], "scores"),
    "inputs by position": (["b", "a"], ColumnContract(inputs=("anchor", "positive")), [("anchor", "b"), ("positive", "a")],
                           None),
    "mnrl pairs": (["q", "p"], MNRL, [("anchor", "q"), ("positive", "p")], None),
    "mnrl hard negatives": (["q", "p", "n1", "n2", "n3"], MNRL,
                            [("anchor", "q"), ("positive", "p"), ("negative_1", "n1"), ("negative_2", "n2"),
                             ("negative_3", "n3")], None),
    "triplets": (["anchor", "positive", "negative"], TRIPLET,
                 [("anchor", "anchor"), ("positive", "positive"), ("negative", "negative")], None),
}


@pytest.mark.parametrize(("columns", "contract", "inputs", "label"), INFERRED.values(), ids=INFERRED.keys())
def test_inferred_mapping(columns, contract, inputs, label):
    mapping = resolve(columns, contract)

    assert mapping == ColumnMapping(inputs=tuple(inputs), label=label, inferred=True)


def test_label_names_are_tried_in_order():
    mapping = resolve(["s1", "s2", "score", "label"], PAIR_SCORE, ignore=["score"])

    assert mapping.label == "label"
    assert mapping.input_columns == ["s1", "s2"]


def test_ignored_columns_are_dropped_before_inference():
    mapping = resolve(["id", "q", "p", "label"], MNRL, ignore=["id", "label"])

    assert mapping.inputs == (("anchor", "q"), ("positive", "p"))
    assert mapping.label is None


# Explicit mappings


def test_explicit_mapping_orders_columns_freely():
    mapping = resolve(["gold", "b", "a"], PAIR_SCORE, {"sentence1": "a", "sentence2": "b", "label": "gold"})

    assert mapping == ColumnMapping(inputs=(("sentence1", "a"), ("sentence2", "b")), label="gold", inferred=False)


def test_explicit_mapping_takes_a_list_for_the_repeated_input():
    mapping = resolve(["n2", "question", "answer", "n1"], MNRL,
                      {"anchor": "question", "positive": "answer", "negative": ["n1", "n2"]})

    assert mapping.inputs == (("anchor", "question"), ("positive", "answer"), ("negative_1", "n1"), ("negative_2", "n2"))
    assert not mapping.inferred


def test_explicit_mapping_takes_a_single_column_for_the_repeated_input():
    mapping = resolve(["q", "p", "n"], MNRL, {"anchor": "q", "positive": "p", "negative": "n"})

    assert mapping.inputs[-1] == ("negative_1", "n")


def test_explicit_mapping_with_ignored_columns():
    mapping = resolve(["id", "q", "p"], MNRL, {"anchor": "q", "positive": "p"}, ignore=["id"])

    assert mapping.input_columns == ["q", "p"]


# Mismatches

MISMATCHES = {
    "mapped column missing, did-you-mean": (
        ["question", "answer"], MNRL, {"anchor": "questoin", "positive": "answer"}, [],
        ["'anchor' maps to column 'questoin', which the data does not have (did you mean 'question'?)"]),
    "label column missing from mapping target": (
        ["a", "b", "gold"], PAIR_SCORE, {"sentence1": "a", "sentence2": "b", "label": "golden"}, [],
        ["'label' maps to column 'golden'", "(did you mean 'gold'?)"]),
    "unknown role, did-you-mean": (
        ["a", "b"], MNRL, {"anchor": "a", "positive": "b", "negatives": ["b"]}, [],
        ["'negatives' is not an input of this loss/evaluator (did you mean 'negative'?)"]),
    "list for a single input": (
        ["a", "b", "c"], MNRL, {"anchor": ["a", "c"], "positive": "b"}, [], ["'anchor' takes a single column"]),
    "input not mapped": (["a", "b"], TRIPLET, {"anchor": "a", "positive": "b"}, [], ["input 'negative' is not mapped"]),
    "label not mapped": (
        ["a", "b", "gold"], PAIR_SCORE, {"sentence1": "a", "sentence2": "b"}, [],
        ["the score label is not mapped to a column"]),
    "several problems at once": (
        ["a", "b"], PAIR_SCORE, {"sentence1": "x", "sentence2": "b"}, [],
        ["'sentence1' maps to column 'x'", "the score label is not mapped"]),
    "unmapped extra column": (
        ["a", "b", "extra"], MNRL, {"anchor": "a", "positive": "b"}, [], ["columns ['extra'] are neither mapped nor ignored"]),
    "too few columns": (["a"], MNRL, None, [], ["expected at least 2 text columns (anchor, positive, negative...)",
                                                "found 1: ['a']"]),
    "too many columns": (["a", "b", "c"], ColumnContract(inputs=("anchor", "positive")), None, [],
                         ["expected 2 text columns (anchor, positive) but found 3"]),
    "too few for triplets": (["a", "b"], TRIPLET, None, [], ["expected 3 text columns"]),
    "label for a label-less loss": (
        ["q", "p", "label"], MNRL, None, [], ["column 'label' looks like a label", "ignore_columns"]),
    "score for a label-less loss": (["a", "b", "c", "score"], TRIPLET, None, [], ["column 'score' looks like a label"]),
    "label missing": (["a", "b", "similarity"], PAIR_SCORE, None, [],
                      ["needs a score label but the data has no column named label / labels / score / scores"]),
    "label missing, class": (["a", "b"], PAIR_CLASS, None, [], ["needs a class label"]),
    "unknown ignore_columns": (["a", "b", "label"], PAIR_SCORE, None, ["lable"],
                               ["ignore_columns names 'lable'", "(did you mean 'label'?)"]),
    "unknown ignore_columns with a mapping": (
        ["a", "b"], MNRL, {"anchor": "a", "positive": "b"}, ["c"], ["ignore_columns names 'c'"]),
    "ignored column mapped": (["id", "q", "p"], MNRL, {"anchor": "id", "positive": "p"}, ["id"],
                              ["'anchor' maps to column 'id'"]),
}


@pytest.mark.parametrize(("columns", "contract", "mapping", "ignore", "fragments"), MISMATCHES.values(),
                         ids=MISMATCHES.keys())
def test_mismatch_raises_data_error(columns, contract, mapping, ignore, fragments):
    message = data_error(resolve, columns, contract, mapping, ignore)

    for fragment in fragments:
        assert fragment in message


def test_explicit_mapping_errors_name_the_columns_key():
    message = data_error(resolve, ["a"], MNRL, {"anchor": "a"})

    assert message.startswith(f"{WHERE}.columns: ")


def test_columns_named_after_other_inputs_in_the_wrong_order_are_refused():
    message = data_error(resolve, ["positive", "anchor"], MNRL)

    assert "column 'positive' would feed input 'anchor'" in message


def test_hard_negative_columns_named_negative_are_in_order():
    assert resolve(["anchor", "positive", "negative"], MNRL).inputs[-1] == ("negative_1", "negative")

"""The cross-encoder contracts: a list input (a query's candidate documents, of any length from 1), a `list_scores`
label with one score per document, and token lengths measured on the pairs a cross-encoder reads.

Every problem names the column and the rows, and for a score list that does not match its documents, the two
lengths of each row shown.
"""

import math

import pytest
from datasets import Dataset

from embedtrain.data.checks import DatasetReport, LoadedData, Tokenization, inspect_rows
from embedtrain.data.contract import ColumnContract, resolve_columns
from embedtrain.losses import LOSSES, loss_contract
from embedtrain.losses.cross_encoder.listwise import LISTWISE_CONTRACT

WHERE = "datasets.train.lists"


def report_for(data: dict, contract: ColumnContract, tokenization: Tokenization | None = None) -> DatasetReport:
    rows = Dataset.from_dict(data)
    mapping = resolve_columns(rows.column_names, contract, None, [], WHERE)
    report = DatasetReport(where=WHERE, source="test", contract=contract, row_count=len(rows), mapping=mapping)
    inspect_rows(report, LoadedData(rows, mapping), tokenization)
    return report


DOCUMENTS = [["a man plays", "a dog", "the sun"], ["rain"], ["a cat", "a bus"]]
SCORES = [[1.0, 0.0, 2.0], [1.0], [0.0, 1.0]]


def listwise(documents=DOCUMENTS, scores=SCORES, queries=("q one", "q two", "q three")) -> dict:
    return {"query": list(queries), "documents": documents, "scores": scores}


def test_the_contract_reads_query_documents_and_a_score_per_document():
    assert LISTWISE_CONTRACT.describe() == "query, [documents] + list_scores label"
    mapping = resolve_columns(["query", "documents", "scores"], LISTWISE_CONTRACT, None, [], WHERE)
    assert mapping.inputs == (("query", "query"), ("documents", "documents")) and mapping.label == "scores"


VALID = {
    "lists of different lengths": listwise(),
    "integer scores": listwise(scores=[[1, 0, 2], [3], [0, 0]]),
    "one document each": listwise(documents=[["a"], ["b"], ["c"]], scores=[[1.0], [0.0], [2.0]]),
}


@pytest.mark.parametrize("data", VALID.values(), ids=VALID.keys())
def test_valid_lists_have_no_finding(data):
    assert report_for(data, LISTWISE_CONTRACT).findings == []


INVALID = {
    "documents as one text": (listwise(documents=["a", "b", "c"]),
                              "column 'documents' (documents) must hold a list of texts per row (the row's candidates), "
                              "but its type is string; store lists in a json(l), parquet or arrow file"),
    "documents as numbers": (listwise(documents=[[1, 2, 3], [4], [5, 6]]), "must hold a list of texts per row"),
    "missing documents": (listwise(documents=[DOCUMENTS[0], None, DOCUMENTS[2]]),
                          "column 'documents' (documents) has 1 missing values, at row 1; drop or fill those rows"),
    "no documents": (listwise(documents=[DOCUMENTS[0], [], DOCUMENTS[2]], scores=[SCORES[0], [], SCORES[2]]),
                     "column 'documents' (documents) has 1 empty lists, at row 1; each row needs at least one text"),
    "blank and missing documents": (listwise(documents=[["a", " ", "c"], ["d"], [None, "e"]]),
                                    "column 'documents' (documents) has 2 missing or empty texts in its lists, at "
                                    "rows 0, 2"),
    "one score per row": (listwise(scores=[1.0, 0.0, 1.0]),
                          "label column 'scores' must hold a list of numbers per row, one score per entry of column "
                          "'documents', but its type is double"),
    "scores as text": (listwise(scores=[["1", "0", "2"], ["1"], ["0", "1"]]), "must hold a list of numbers per row"),
    "missing scores": (listwise(scores=[SCORES[0], None, SCORES[2]]),
                       "label column 'scores' has 1 missing values, at row 1"),
    "non-finite score": (listwise(scores=[[1.0, math.nan, 2.0], [1.0], [None, 1.0]]),
                         "label column 'scores' must hold finite numbers; 2 rows do not, at rows 0, 2"),
    "fewer scores than documents": (listwise(scores=[[1.0, 0.0], [1.0], [0.0, 1.0, 3.0]]),
                                    "label column 'scores' must hold one score per entry of column 'documents'; 2 "
                                    "rows do not (row 0: documents has 3 entries but scores has 2; row 2: documents "
                                    "has 2 entries but scores has 3)"),
}


@pytest.mark.parametrize(("data", "message"), INVALID.values(), ids=INVALID.keys())
def test_invalid_lists_are_errors_naming_column_and_rows(data, message):
    errors = report_for(data, LISTWISE_CONTRACT).errors
    assert len(errors) == 1 and errors[0].startswith(WHERE) and message in errors[0], errors


def test_at_most_five_mismatched_rows_are_shown():
    data = listwise(documents=[["a", "b"]] * 8, scores=[[1.0]] * 8, queries=["q"] * 8)
    errors = report_for(data, LISTWISE_CONTRACT).errors
    assert "8 rows do not (row 0: documents has 2 entries but scores has 1; " in errors[0]
    assert "row 4: documents has 2 entries but scores has 1, ...)" in errors[0]


def test_pair_lengths_are_measured_on_the_pairs_the_cross_encoder_reads(tiny_checkpoint):
    from transformers import AutoTokenizer

    tokenization = Tokenization(AutoTokenizer.from_pretrained(tiny_checkpoint), max_seq_length=8)
    report = report_for(listwise(queries=("a man", "the dog", "a")), LISTWISE_CONTRACT, tokenization)
    stats = report.token_stats["query+documents"]
    # [CLS] query [SEP] document [SEP] for each of the 6 documents: the first query's three pairs are 8, 7 and 7
    # tokens long, the others 6.
    assert (stats.sampled, stats.minimum, stats.maximum, stats.truncated) == (6, 6, 8, 0.0)
    assert report.warnings == []
    short = Tokenization(tokenization.tokenizer, max_seq_length=6)
    report = report_for(listwise(queries=("a man", "the dog", "a")), LISTWISE_CONTRACT, short)
    assert report.token_stats["query+documents"].truncated == 0.5
    assert any("50.0% of the pairs ('query', 'documents') (query, documents) are longer than max_seq_length 6 tokens "
               "together" in warning for warning in report.warnings), report.warnings


def test_pairs_of_single_columns_are_measured_too(tiny_checkpoint):
    from transformers import AutoTokenizer

    tokenization = Tokenization(AutoTokenizer.from_pretrained(tiny_checkpoint), max_seq_length=64)
    contract = LOSSES["CrossEncoderMarginMSELoss"].contract
    data = {"query": ["a man", "a"], "positive": ["a dog", "the sun"], "negative": ["rain", "a cat"],
            "scores": [[1.0, 0.0], [2.0, 0.5]]}
    report = report_for(data, contract, tokenization)
    assert report.findings == []
    assert set(report.token_stats) == {"query+positive", "query+negative"}
    assert report.token_stats["query+positive"].maximum == 7  # [CLS] a man [SEP] a dog [SEP]


def test_a_class_label_is_bounded_by_the_cross_encoders_outputs():
    cross_entropy = LOSSES["CrossEntropyLoss"].params_model(type="CrossEntropyLoss")
    assert loss_contract(cross_entropy).num_classes is None  # unknown without the model
    assert loss_contract(cross_entropy, num_labels=3).num_classes == 3
    softmax = LOSSES["SoftmaxLoss"].params_model(type="SoftmaxLoss", num_labels=4)
    assert loss_contract(softmax, num_labels=3).num_classes == 4  # a dense loss's own classes
    errors = report_for({"a": ["x", "y"], "b": ["z", "w"], "label": [0, 3]},
                        loss_contract(cross_entropy, num_labels=3)).errors
    assert "must hold integers from 0 to 2 (num_labels is 3); 1 rows do not, at row 1 (values [3.0])" in errors[0]

"""Cross-encoder evaluators without the reference: what is reranked and how it is scored (on hand-computed lists),
the model kinds evaluators declare and the evaluator a mismatch names, and the errors their data and options raise.
"""

import json
from pathlib import Path

import pytest
import torch

from embedtrain.errors import DataError, ModelLoadError, RecipeError
from embedtrain.evaluation import EVALUATORS, build_evaluator
from embedtrain.evaluation.registry import evaluator_for, model_kind_problem, model_kind_problems


class TableScorer:
    """A cross-encoder stand-in: each document's score from a table (its query ignored), 0 for others; with several
    labels, the n-th pair is predicted as class n modulo num_labels."""

    def __init__(self, scores: dict[str, float], num_labels: int = 1) -> None:
        self.scores, self.num_labels, self.calls = scores, num_labels, []

    def predict(self, pairs, batch_size: int = 32) -> torch.Tensor:
        self.calls.append((list(pairs), batch_size))
        if self.num_labels > 1:
            return torch.nn.functional.one_hot(torch.arange(len(pairs)) % self.num_labels, self.num_labels).float()
        return torch.tensor([self.scores.get(document, 0.0) for _, document in pairs], dtype=torch.float32)


def build(type_name: str, **fields):
    return build_evaluator(EVALUATORS[type_name].params_model(type=type_name, **fields), "evaluators[0] (dev)")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


PERFECT = {"p1": 1.0, "p2": 0.9, "n1": 0.2, "n2": 0.1}


def test_a_ranked_list_is_scored_before_and_after_reranking(tmp_path) -> None:
    """documents [n1, p1, n2] miss p2: the incoming order (p2 appended last) has MRR 1/2 and AP (1/2 + 2/4) / 2; a
    perfect reranker scores 1, with p2 reranked too or, without always_rerank_positives, on the list alone."""
    source = write_jsonl(tmp_path / "ranked.jsonl", [{"query": "q", "positive": ["p1", "p2"],
                                                      "documents": ["n1", "p1", "n2"]}])
    for always in (True, False):
        scorer = TableScorer(PERFECT)
        metrics = build("cross_encoder_reranking", name="dev", source=str(source), always_rerank_positives=always,
                        batch_size=7)(scorer)
        assert metrics["dev_base_mrr@10"] == 0.5
        assert metrics["dev_base_map"] == pytest.approx(0.5)
        assert metrics["dev_map"] == metrics["dev_mrr@10"] == metrics["dev_ndcg@10"] == pytest.approx(1.0)
        scored = [document for _, document in scorer.calls[0][0]]
        assert scored == (["p1", "p2", "n1", "n2"] if always else ["n1", "p1", "n2"])
        assert scorer.calls[0][1] == 7


def test_a_query_without_positives_counts_as_zero(tmp_path) -> None:
    source = write_jsonl(tmp_path / "rerank.jsonl", [{"query": "q", "positive": "p1", "negative": ["n1", "n2"]},
                                                     {"query": "r", "positive": [], "negative": ["n1"]}])
    scorer = TableScorer({"p1": 0.1, "n1": 0.5, "n2": 0.0})
    metrics = build("cross_encoder_reranking", name="dev", source=str(source), at_k=1)(scorer)
    assert list(metrics) == ["dev_map", "dev_mrr@1", "dev_ndcg@1"]
    assert metrics["dev_mrr@1"] == 0.0  # p1 is second: outside the top 1
    assert metrics["dev_map"] == pytest.approx(0.5 / 2)  # AP 1/2 for q, 0 for r
    assert len(scorer.calls[0][0]) == 3  # r has nothing to find: not scored


def test_classification_keys_follow_num_labels(tmp_path) -> None:
    source = tmp_path / "pairs.csv"
    source.write_text("sentence1,sentence2,label\na,b,0\nc,d,2\ne,f,1\n")
    metrics = build("cross_encoder_classification", name="nli", source=str(source), num_labels=3)(
        TableScorer({}, num_labels=3))
    # labels 0, 2, 1 and predictions 0, 1, 2: class 0 alone is right
    assert metrics == pytest.approx({"nli_f1_macro": 1 / 3, "nli_f1_micro": 1 / 3, "nli_f1_weighted": 1 / 3})
    assert list(metrics) == ["nli_f1_macro", "nli_f1_micro", "nli_f1_weighted"]
    (tmp_path / "binary.csv").write_text("sentence1,sentence2,label\na,b,0\nc,d,1\n")
    with pytest.raises(RecipeError, match=r"num_labels is 1, but the model has 3 outputs; set num_labels: 3"):
        build("cross_encoder_classification", name="nli", source=str(tmp_path / "binary.csv"))(
            TableScorer({}, num_labels=3))
    with pytest.raises(DataError, match=r"label column 'label' must hold integers from 0 to 1 \(num_labels is 2\)"):
        build("cross_encoder_classification", name="nli", source=str(source), num_labels=2)


def test_a_score_evaluator_needs_one_output(sts_csv) -> None:
    evaluator = build("cross_encoder_correlation", name="sts", source=str(sts_csv))
    with pytest.raises(RecipeError, match=r"needs a cross-encoder with one output .* this model has 3 labels"):
        evaluator(TableScorer({}, num_labels=3))


@pytest.mark.parametrize("rows, fragment", [
    ([{"query": "q", "positive": ["p"], "negative": ["n", 5]}],
     "column 'negative' (negative) must hold a list of non-empty texts (or one text) in every row; it does not at "
     "row 0 (1 in all, e.g. ['n', 5])"),
    ([{"query": "q", "positive": ["p"], "negative": ["n"]}, {"query": " ", "positive": ["p"], "negative": ["n"]}],
     "column 'query' (query) must hold a non-empty text in every row; it does not at row 1"),
    ([{"query": "q", "positive": None, "negative": ["n"]}], "column 'positive' (positive) must hold a list"),
    ([{"query": "q", "positive": ["p"], "negative": ["n"], "documents": ["n", "p"]}],
     "expected 3 text columns (query, positive, documents) but found 4"),
    ([{"query": "q", "positives": ["p"]}], "expected 3 text columns (query, positive, negative) but found 2"),
])
def test_reranking_data_errors_name_the_column_and_row(rows, fragment, tmp_path) -> None:
    with pytest.raises(DataError) as error:
        build("cross_encoder_reranking", name="dev", source=str(write_jsonl(tmp_path / "rerank.jsonl", rows)))
    assert "evaluators[0] (dev)" in str(error.value)
    assert fragment in str(error.value)


# -- NanoBEIR reranking on local BEIR folders -----------------------------------------------------------------------


def test_a_candidates_file_is_reranked(beir_folder: Path, tmp_path) -> None:
    candidates = write_jsonl(tmp_path / "candidates.jsonl", [
        {"query-id": "q0", "corpus-ids": ["doc90", "doc04", "doc00"]},  # both relevant, at ranks 2 and 3
        {"query-id": "q1", "corpus-ids": ["doc01", "doc02"]},
        {"query-id": "q-unjudged", "corpus-ids": ["doc01"]},  # nothing to find: left out
    ])
    evaluator = build("cross_encoder_nanobeir", source=str(beir_folder), candidates=str(candidates), rerank_k=2)
    assert evaluator.primary_metric == "NanoBEIR_R2_mean_ndcg@10"
    texts = {text: float(index) for index, text in enumerate(
        ["a title the weather is lovely today", "a man plays guitar", "a woman eats"])}
    metrics = evaluator(TableScorer(texts))
    assert list(metrics) == evaluator.metric_names(evaluator.params)
    assert metrics["tinybeir_R2_base_mrr@10"] == pytest.approx((1 / 2 + 1) / 2)  # q0: doc04 second; q1: first
    assert metrics["NanoBEIR_R2_mean_ndcg@10"] == metrics["tinybeir_R2_ndcg@10"]


@pytest.mark.parametrize("fields, error, fragment", [
    ({}, DataError, "which brings no candidates to rerank: name a first_stage model"),
    ({"first_stage": "/no/such/model"}, ModelLoadError,
     "evaluators[0] (dev).first_stage: model directory '/no/such/model' does not exist"),
    ({"dataset_names": ["nq"], "candidates": "x.jsonl"}, DataError, "dataset_names: applies to hub datasets only"),
    ({"candidates": "missing.jsonl"}, DataError, "evaluators[0] (dev).candidates: 'missing.jsonl' is not a file"),
])
def test_nanobeir_option_errors(fields, error, fragment, beir_folder: Path) -> None:
    with pytest.raises(error) as raised:
        build("cross_encoder_nanobeir", source=str(beir_folder), **fields)
    assert fragment in str(raised.value)


@pytest.mark.parametrize("row, fragment", [
    ({"query-id": "q0", "corpus-ids": ["doc00", "nope"]}, "row 1: corpus-ids ['nope'] are not in the corpus"),
    ({"query-id": "q99", "corpus-ids": ["doc00"]}, "row 1: query-id 'q99' is not one of the queries"),
    ({"query-id": "q1", "corpus-ids": "doc00"}, "row 1: corpus-ids must be a list of corpus ids"),
    ({"query-id": "q0", "corpus-ids": ["doc01"]}, "row 1: query-id 'q0' is ranked twice"),
])
def test_candidates_file_errors_name_the_row(row, fragment, beir_folder: Path, tmp_path) -> None:
    candidates = write_jsonl(tmp_path / "candidates.jsonl", [{"query-id": "q0", "corpus-ids": ["doc00"]}, row])
    with pytest.raises(DataError) as raised:
        build("cross_encoder_nanobeir", source=str(beir_folder), candidates=str(candidates))
    assert f"{str(candidates)!r}, {fragment}" in str(raised.value)


def test_nanobeir_options_that_exclude_each_other() -> None:
    model = EVALUATORS["cross_encoder_nanobeir"].params_model
    with pytest.raises(ValueError, match="`first_stage` and `candidates` both name the candidates; keep one"):
        model(type="cross_encoder_nanobeir", first_stage="m", candidates="c.jsonl")
    with pytest.raises(ValueError, match="`columns` does not apply"):
        model(type="cross_encoder_nanobeir", columns={"query": "q"})
    with pytest.raises(ValueError, match="truncate_dim"):
        model(type="cross_encoder_nanobeir", truncate_dim=8)


def test_hub_sets_leave_out_argument_retrieval() -> None:
    params = EVALUATORS["cross_encoder_nanobeir"].params_model(type="cross_encoder_nanobeir")
    names = EVALUATORS["cross_encoder_nanobeir"].evaluator_class.metric_names(params)
    assert names[:6] == ["NanoClimateFEVER_R100_map", "NanoClimateFEVER_R100_mrr@10", "NanoClimateFEVER_R100_ndcg@10",
                         "NanoClimateFEVER_R100_base_map", "NanoClimateFEVER_R100_base_mrr@10",
                         "NanoClimateFEVER_R100_base_ndcg@10"]
    assert len(names) == 12 * 6
    assert not [name for name in names if "ArguAna" in name or "Touche" in name]


# -- model kinds -----------------------------------------------------------------------------------------------------


def test_every_evaluator_declares_its_model_kinds() -> None:
    cross_encoder = {name for name, spec in EVALUATORS.items() if "cross_encoder" in spec.evaluator_class.model_kinds}
    assert cross_encoder == {"cross_encoder_reranking", "cross_encoder_correlation", "cross_encoder_classification",
                             "cross_encoder_nanobeir"}
    assert EVALUATORS["sts"].evaluator_class.model_kinds == ("dense", "sparse")
    assert EVALUATORS["sparse_ir"].evaluator_class.model_kinds == ("sparse",)
    assert EVALUATORS["mse"].evaluator_class.model_kinds == ("dense",)


@pytest.mark.parametrize("type_name, kind, right", [
    ("sts", "cross_encoder", "cross_encoder_correlation"),
    ("binary", "cross_encoder", "cross_encoder_classification"),
    ("sparse_reranking", "cross_encoder", "cross_encoder_reranking"),
    ("nanobeir", "cross_encoder", "cross_encoder_nanobeir"),
    ("cross_encoder_correlation", "dense", "sts"),
    ("cross_encoder_reranking", "sparse", "sparse_reranking"),
    ("cross_encoder_nanobeir", "sparse", "sparse_nanobeir"),
    ("sparse_sts", "dense", "sts"),
])
def test_a_mismatch_names_the_evaluator_to_use(type_name, kind, right) -> None:
    assert evaluator_for(type_name, kind) == right
    assert model_kind_problem(type_name, kind).endswith(f": use {right}")
    assert model_kind_problem(right, kind) is None


def test_model_kind_problems_point_at_each_evaluator() -> None:
    params = [EVALUATORS["cross_encoder_correlation"].params_model(type="cross_encoder_correlation", name="a", source="x"),
              EVALUATORS["sequential"].params_model(type="sequential", evaluators=[
                  {"type": "sts", "name": "b", "source": "x"}, {"type": "mse", "name": "c", "source": "x",
                                                                 "teacher": "t"}])]
    problems = model_kind_problems(params, "cross_encoder")
    assert [path for path, _ in problems] == [("evaluators", 1, "evaluators", 0, "type"),
                                              ("evaluators", 1, "evaluators", 1, "type")]
    assert problems[0][1] == ("sts scores a dense embedding model (SentenceTransformer) or a sparse embedding model "
                              "(SparseEncoder), and this model is a cross-encoder (CrossEncoder, a reranker): use "
                              "cross_encoder_correlation")
    assert problems[1][1].endswith("no evaluator does this for a cross-encoder (CrossEncoder, a reranker)")
    assert model_kind_problems(params, "dense") == [(("evaluators", 0, "type"), model_kind_problem(
        "cross_encoder_correlation", "dense"))]

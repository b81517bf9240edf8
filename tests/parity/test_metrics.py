"""The metric functions agree with the reference's helpers and with scikit-learn, ties included."""

import numpy as np
import pytest
from sentence_transformers.sentence_transformer.evaluation import BinaryClassificationEvaluator
from sklearn.metrics import average_precision_score, matthews_corrcoef, ndcg_score

from embedtrain.evaluation.metrics import (
    average_precision,
    best_accuracy_and_threshold,
    best_f1_and_threshold,
    matthews_correlation,
    ndcg_tie_averaged,
    retrieval_metrics,
)


def tied_scores(seed: int, size: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=size)
    scores = np.round(labels * 0.3 + rng.normal(scale=0.4, size=size), 1).astype(np.float32)  # many ties
    return scores, labels


@pytest.mark.parametrize("higher_is_similar", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_binary_thresholds_match_the_reference(seed: int, higher_is_similar: bool) -> None:
    scores, labels = tied_scores(seed)
    reference = BinaryClassificationEvaluator
    assert best_accuracy_and_threshold(scores, labels, higher_is_similar) == pytest.approx(
        reference.find_best_acc_and_threshold(scores, labels, higher_is_similar), abs=1e-7)
    assert best_f1_and_threshold(scores, labels, higher_is_similar) == pytest.approx(
        reference.find_best_f1_and_threshold(scores, labels, higher_is_similar), abs=1e-7)


def test_accuracy_threshold_without_a_useful_cut() -> None:
    scores, labels = np.array([0.9, 0.8], dtype=np.float32), np.array([0, 0])
    assert best_accuracy_and_threshold(scores, labels) == pytest.approx(
        BinaryClassificationEvaluator.find_best_acc_and_threshold(scores, labels, True))


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_and_mcc_match_sklearn(seed: int) -> None:
    scores, labels = tied_scores(seed)
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    predictions = scores >= np.median(scores)
    assert matthews_correlation(labels, predictions) == pytest.approx(matthews_corrcoef(labels, predictions), abs=1e-12)
    assert matthews_correlation(labels, np.ones_like(labels)) == 0.0


@pytest.mark.parametrize("k", [1, 3, 10, 100])
@pytest.mark.parametrize("seed", range(4))
def test_tie_averaged_ndcg_matches_sklearn(seed: int, k: int) -> None:
    scores, labels = tied_scores(seed, size=25)
    assert ndcg_tie_averaged(labels, scores, k) == pytest.approx(ndcg_score([labels], [scores], k=k), abs=1e-12)


def test_retrieval_metrics_by_hand() -> None:
    # Query 1: relevant at ranks 2 and 4 of 3 relevant; query 2: relevant at rank 1 of 1.
    hits = np.array([[False, True, False, True, False], [True, False, False, False, False]])
    metrics = retrieval_metrics(hits, np.array([3, 1]), {
        "accuracy@k": [1, 3], "precision@k": [3], "recall@k": [5], "ndcg@k": [5], "mrr@k": [1, 5], "map@k": [5]})
    assert metrics["accuracy@k"] == {1: 0.5, 3: 1.0}
    assert metrics["precision@k"][3] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert metrics["recall@k"][5] == pytest.approx((2 / 3 + 1) / 2)
    assert metrics["mrr@k"] == pytest.approx({1: 0.5, 5: (0.5 + 1) / 2})
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert metrics["ndcg@k"][5] == pytest.approx((dcg / ideal + 1) / 2)
    assert metrics["map@k"][5] == pytest.approx(((1 / 2 + 2 / 4) / 3 + 1) / 2)

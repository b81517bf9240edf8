"""Metrics as pure functions on arrays (no model)."""

import numpy as np


def rankdata(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values get the mean of their ranks (as scipy.stats.rankdata)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values, and the average rank over the run.
    run_starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    run_ends = np.r_[run_starts[1:], len(values)]
    average_ranks = (run_starts + run_ends + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(average_ranks, run_ends - run_starts)
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    y = np.asarray(y, dtype=np.float64) - np.mean(y)
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(rankdata(x), rankdata(y))


# -- binary classification (pairs labelled 0/1, scored by a similarity or a distance) ---------------------------


def _sorted_by_score(scores: np.ndarray, labels: np.ndarray, higher_is_similar: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels ordered from most to least similar (ties keep their input order)."""
    order = np.argsort(-scores if higher_is_similar else scores, kind="stable")
    return scores[order], labels[order]


def _threshold_after(sorted_scores: np.ndarray, position: int):
    """The reference's threshold between run-end `position` and the next score: the midpoint, or the score itself
    at the end, or when the midpoint rounds onto the next score."""
    if position == len(sorted_scores) - 1:
        return sorted_scores[position]
    midpoint = (sorted_scores[position] + sorted_scores[position + 1]) / 2
    return sorted_scores[position] if midpoint == sorted_scores[position + 1] else midpoint


def _run_ends(sorted_scores: np.ndarray) -> np.ndarray:
    """Indices of the last element of each run of equal scores: a threshold can only fall between runs."""
    return np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])


def best_accuracy_and_threshold(scores: np.ndarray, labels: np.ndarray, higher_is_similar: bool = True) -> tuple[float, float]:
    """(best accuracy, threshold) of predicting 1 for pairs at least as similar as the threshold.

    scores: (n,) similarity (higher_is_similar) or distance; labels: (n,) 0/1. Ties are never split. With
    no better cut, everything is predicted 0 and the threshold sits just beyond the most similar score.
    """
    scores, labels = _sorted_by_score(np.asarray(scores), np.asarray(labels), higher_is_similar)
    if len(scores) == 0:
        return 0.0, -1.0
    score_dtype = np.result_type(scores.dtype, np.float16)
    total_negatives = int(np.sum(labels == 0))
    ends = _run_ends(scores)
    positives_so_far = np.cumsum(labels == 1)[ends]
    negatives_left = total_negatives - np.cumsum(labels == 0)[ends]
    accuracies = (positives_so_far + negatives_left) / len(labels)
    best = int(np.argmax(accuracies))  # the first of equal maxima, as a strict '>' scan would keep
    if accuracies[best] > total_negatives / len(labels):
        return float(accuracies[best]), float(_threshold_after(scores, ends[best]))
    beyond = np.nextafter(scores[0], np.inf if higher_is_similar else -np.inf, dtype=score_dtype)
    return float(total_negatives / len(labels)), float(beyond)


def best_f1_and_threshold(scores: np.ndarray, labels: np.ndarray,
                          higher_is_similar: bool = True) -> tuple[float, float, float, float]:
    """(best F1, its precision, its recall, threshold) for predicting 1 at or beyond a threshold; zeros when no
    cut predicts a positive correctly."""
    scores, labels = _sorted_by_score(np.asarray(scores), np.asarray(labels), higher_is_similar)
    ends = _run_ends(scores) if len(scores) else np.array([], dtype=int)
    correct = np.cumsum(labels == 1)[ends]
    extracted = ends + 1
    total_positives = int(np.sum(labels == 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = correct / extracted
        recall = correct / total_positives
        f1 = np.where(correct > 0, 2 * precision * recall / (precision + recall), 0.0)
    if len(f1) == 0 or f1.max() <= 0:
        return 0.0, 0.0, 0.0, 0.0
    best = int(np.argmax(f1))
    return float(f1[best]), float(precision[best]), float(recall[best]), float(_threshold_after(scores, ends[best]))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum over distinct score thresholds (sklearn's definition):
    sum over thresholds of (recall gain) x precision. Higher scores mean more likely positive."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    ends = _run_ends(scores)
    true_positives = np.cumsum(labels)[ends]
    if len(true_positives) == 0 or true_positives[-1] == 0:
        return float("nan")
    precision = true_positives / (ends + 1)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def matthews_correlation(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Matthews correlation coefficient of 0/1 predictions; 0 when any confusion-matrix margin is empty."""
    labels, predictions = np.asarray(labels).astype(bool), np.asarray(predictions).astype(bool)
    tp = float(np.sum(labels & predictions))
    tn = float(np.sum(~labels & ~predictions))
    fp = float(np.sum(~labels & predictions))
    fn = float(np.sum(labels & ~predictions))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator > 0 else 0.0


# -- ranking (binary relevance) ----------------------------------------------------------------------------------


def _discounts(length: int) -> np.ndarray:
    """DCG gain discount of ranks 1..length: 1 / log2(rank + 1)."""
    return 1.0 / np.log2(np.arange(length) + 2.0)


def retrieval_metrics(hits: np.ndarray, num_relevant: np.ndarray, metric_ks: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """Mean retrieval metrics over queries, from which ranked results are relevant.

    hits: (queries, depth) bool, hits[q, r] = the result at rank r+1 for query q is relevant (results ranked by
        (-score, corpus id); depth >= the largest k, padded with False when the corpus is smaller).
    num_relevant: (queries,) number of relevant documents of each query (> 0).
    metric_ks: cut-offs per metric among accuracy@k, precision@k, recall@k, ndcg@k, mrr@k, map@k.
    Returns {metric: {k: mean value}}: accuracy@k = any hit in the top k; precision@k = hits/k; recall@k =
    hits/|relevant|; MRR@k = 1/rank of the first hit; nDCG@k with gains 1/log2(rank+1) against the ideal
    ranking; MAP@k = sum of precision at each hit / min(k, |relevant|).
    """
    hits = np.asarray(hits, dtype=bool)
    num_relevant = np.asarray(num_relevant, dtype=np.float64)
    ranks = np.arange(1, hits.shape[1] + 1)
    results: dict[str, dict[int, float]] = {}
    for metric, ks in metric_ks.items():
        results[metric] = {}
        for k in ks:
            top = hits[:, :k]
            if metric == "accuracy@k":
                values = top.any(axis=1)
            elif metric == "precision@k":
                values = top.sum(axis=1) / k
            elif metric == "recall@k":
                values = top.sum(axis=1) / num_relevant
            elif metric == "mrr@k":
                values = np.where(top.any(axis=1), 1.0 / (np.argmax(top, axis=1) + 1), 0.0)
            elif metric == "ndcg@k":
                discounts = _discounts(k)
                ideal = np.cumsum(discounts)[np.minimum(num_relevant, k).astype(int) - 1]
                values = (top * discounts[:top.shape[1]]).sum(axis=1) / ideal
            elif metric == "map@k":
                precision_at_hits = np.cumsum(top, axis=1) / ranks[:top.shape[1]] * top
                values = precision_at_hits.sum(axis=1) / np.minimum(num_relevant, k)
            else:
                raise ValueError(f"unknown retrieval metric {metric!r}")
            results[metric][k] = float(np.mean(values))
    return results


def ndcg_tie_averaged(relevance: np.ndarray, scores: np.ndarray, k: int) -> float:
    """nDCG@k of one ranked list where tied scores share the average gain of their group (sklearn's ndcg_score).

    relevance: (n,) gains (0/1 for binary); scores: (n,) predicted scores, higher first.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    discounts = _discounts(len(relevance))
    discounts[k:] = 0.0
    _, group_of, group_sizes = np.unique(-np.asarray(scores), return_inverse=True, return_counts=True)
    group_gain = np.zeros(len(group_sizes))
    np.add.at(group_gain, group_of, relevance)
    cumulative = np.cumsum(discounts)[np.cumsum(group_sizes) - 1]
    dcg = float(np.sum(group_gain / group_sizes * np.diff(np.r_[0.0, cumulative])))
    ideal = float(np.sum(np.sort(relevance)[::-1] * discounts))
    return dcg / ideal if ideal > 0 else 0.0


def mined_pairs_metrics(scores: np.ndarray, is_duplicate: np.ndarray, total_duplicates: int) -> dict[str, float]:
    """Average precision and the best-F1 cut of a list of mined pairs, as the reference's paraphrase mining reports.

    scores: (pairs,) similarity of each mined pair, in decreasing order; is_duplicate: (pairs,) bool;
    total_duplicates: known duplicate pairs among all sentences (mined or not), the recall denominator.
    Ties are never split; the threshold is the midpoint between the best cut's score and the next one.
    """
    ends = _run_ends(np.asarray(scores)) if len(scores) else np.array([], dtype=int)
    correct = np.cumsum(is_duplicate)[ends] if len(scores) else np.array([], dtype=int)
    gained = np.diff(np.r_[0, correct])
    precision = correct / (ends + 1)
    recall = correct / total_duplicates if total_duplicates > 0 else np.zeros(len(ends))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(gained > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.nan_to_num(f1)
    average = float(np.sum(precision * gained) / total_duplicates) if total_duplicates > 0 else 0.0
    if len(f1) == 0 or f1.max() <= 0:
        return {"average_precision": average, "f1": 0.0, "precision": 0.0, "recall": 0.0, "threshold": 0.0}
    best = int(np.argmax(f1))
    end = ends[best]
    threshold = (scores[end] + scores[min(end + 1, len(scores) - 1)]) / 2
    return {"average_precision": average, "f1": float(f1[best]), "precision": float(precision[best]),
            "recall": float(recall[best]), "threshold": float(threshold)}


def reciprocal_rank(relevance: np.ndarray, scores: np.ndarray, k: int) -> float:
    """1 / rank of the first relevant item among the `k` best-scored ones, 0 when there is none.

    relevance: (n,) 0/1; scores: (n,), higher first. The ranking is numpy's default ascending sort, reversed: the
    reference's, so that tied scores (a saturated sigmoid gives several 1.0) are ordered as it orders them.
    """
    order = np.argsort(np.asarray(scores))[::-1][:k]
    hits = np.flatnonzero(np.asarray(relevance)[order])
    return 1.0 / (hits[0] + 1) if len(hits) else 0.0


def f1_averages(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Macro, micro and support-weighted F1 of class predictions (sklearn's f1_score, zero_division 0).

    labels, predictions: (n,) class ids. Classes are those that occur in either; a class's F1 is
    2 TP / (|labelled as it| + |predicted as it|), 0 when both are empty. Macro averages over classes,
    weighted by each class's number of labels; micro pools the counts of every class (for single-label
    classes it equals accuracy).
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = np.union1d(labels, predictions)
    true_positives = np.array([np.sum((labels == c) & (predictions == c)) for c in classes], dtype=np.float64)
    labelled = np.array([np.sum(labels == c) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(predictions == c) for c in classes], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(labelled + predicted > 0, 2 * true_positives / (labelled + predicted), 0.0)
    pooled = labelled.sum() + predicted.sum()
    return {"f1_macro": float(per_class.mean()) if len(classes) else 0.0,
            "f1_micro": float(2 * true_positives.sum() / pooled) if pooled else 0.0,
            "f1_weighted": float(np.sum(per_class * labelled) / labelled.sum()) if labelled.sum() else 0.0}

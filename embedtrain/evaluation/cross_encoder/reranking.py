"""Reranking with a cross-encoder (the reference's CrossEncoderRerankingEvaluator): each query's candidates are
scored against it and sorted; MAP, MRR@k and nDCG@k of that order.

A query comes with its positives and either negatives, or `documents`: a first-stage ranking, best first, that may
hold positives and miss some. Then the metrics of the incoming order are reported too (`base_*`): the candidates
in their order, the positives they miss appended after them. With `always_rerank_positives` (the default) the
positives the ranking misses are reranked with it, so a perfect reranker scores 1; without, only the ranking is
reranked, as it would be in a real pipeline.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
from pydantic import Field

from embedtrain.data.contract import ColumnContract, resolve_columns
from embedtrain.data.source import load_source
from embedtrain.errors import DataError
from embedtrain.evaluation.cross_encoder.scoring import CrossEncoderEvaluator, CrossEncoderParams, PairScorer
from embedtrain.evaluation.metrics import average_precision, ndcg_tie_averaged, reciprocal_rank
from embedtrain.evaluation.registry import register_evaluator

logger = logging.getLogger(__name__)

NEGATIVES = ColumnContract(inputs=("query", "positive", "negative"))
RANKED = ColumnContract(inputs=("query", "positive", "documents"))
ROWS_SHOWN = 5


@dataclass(frozen=True)
class RerankingSample:
    """One query, its relevant texts, and its other candidates: negatives, or a ranking (best first) that may hold
    positives."""

    query: str
    positives: tuple[str, ...]
    candidates: tuple[str, ...]


def ranking_keys(at_k: int, ranked: bool) -> list[str]:
    """The reference's keys, in its order: map, mrr@k, ndcg@k, then the incoming order's for a ranking."""
    keys = ["map", f"mrr@{at_k}", f"ndcg@{at_k}"]
    return keys + [f"base_{key}" for key in keys] if ranked else keys


def _list_metrics(relevance: np.ndarray, scores: np.ndarray, at_k: int) -> tuple[float, float, float]:
    """(average precision, reciprocal rank within at_k, nDCG@at_k) of one scored list; zeros without a relevant item."""
    if not relevance.any():
        return 0.0, 0.0, 0.0
    return (average_precision(relevance, scores), reciprocal_rank(relevance, scores, at_k),
            ndcg_tie_averaged(relevance, scores, at_k))


def _to_rerank(sample: RerankingSample, ranked: bool, always_rerank_positives: bool) -> tuple[list[str], np.ndarray]:
    """The texts the model scores for a sample, and which are relevant."""
    positives = set(sample.positives)
    if not ranked:
        texts = list(sample.positives) + list(sample.candidates)
        relevance = [1] * len(sample.positives) + [0] * len(sample.candidates)
    elif always_rerank_positives:
        texts = list(sample.positives) + [text for text in sample.candidates if text not in positives]
        relevance = [1] * len(sample.positives) + [0] * (len(texts) - len(sample.positives))
    else:
        texts = list(sample.candidates)
        relevance = [int(text in positives) for text in texts]
    return texts, np.array(relevance)


def _base_metrics(sample: RerankingSample, at_k: int) -> tuple[float, float, float]:
    """The metrics of the incoming ranking, the positives it misses ranked after it (zeros when it holds none)."""
    positives = set(sample.positives)
    found = [int(text in positives) for text in sample.candidates]
    if not any(found):
        return 0.0, 0.0, 0.0
    relevance = np.array(found + [1] * (len(sample.positives) - sum(found)))
    return _list_metrics(relevance, np.arange(len(relevance), 0, -1, dtype=np.float64), at_k)


def rerank_metrics(score_pairs: Callable[[list[tuple[str, str]]], np.ndarray], samples: list[RerankingSample],
                   ranked: bool, at_k: int, always_rerank_positives: bool) -> dict[str, float]:
    """Mean metrics over samples (a sample without a relevant candidate counts as 0), keys as `ranking_keys`.

    `score_pairs` scores every (query, text) pair of every sample, in one call: (pairs,) scores.
    """
    lists = [_to_rerank(sample, ranked, always_rerank_positives) for sample in samples]
    pairs = [(sample.query, text) for sample, (texts, relevance) in zip(samples, lists) if relevance.any()
             for text in texts]
    scores = score_pairs(pairs)
    values, start = [], 0
    for texts, relevance in lists:
        if relevance.any():
            values.append(_list_metrics(relevance, scores[start:start + len(texts)], at_k))
            start += len(texts)
        else:
            values.append((0.0, 0.0, 0.0))
    means = np.mean(values, axis=0) if values else np.zeros(3)
    metrics = dict(zip(ranking_keys(at_k, False), map(float, means)))
    if ranked:
        base = np.mean([_base_metrics(sample, at_k) for sample in samples], axis=0) if samples else np.zeros(3)
        metrics |= {f"base_{key}": float(value) for key, value in zip(ranking_keys(at_k, False), base)}
        logger.info("reranking %d queries: nDCG@%d %.4f -> %.4f", len(samples), at_k,
                    metrics[f"base_ndcg@{at_k}"], metrics[f"ndcg@{at_k}"])
    return metrics


class CrossEncoderRerankingParams(CrossEncoderParams):
    type: Literal["cross_encoder_reranking"]
    at_k: int = Field(10, gt=0, description="cut-off of MRR and nDCG")
    always_rerank_positives: bool = Field(
        True, description="with a `documents` ranking: rerank the positives it misses too (True), or only the ranking "
        "(False, as a real pipeline would)")
    batch_size: int = Field(64, gt=0, description="pairs per forward pass")

    def ranked(self) -> bool:
        """Whether `columns:` maps a `documents` ranking, so the base_* metrics are known before the data loads
        (without `columns:`, a column named `documents` makes the data a ranking too)."""
        return "documents" in (self.columns or {})


@register_evaluator(CrossEncoderRerankingParams)
class CrossEncoderRerankingEvaluator(CrossEncoderEvaluator):
    """Rows {query, positive, negative} or {query, positive, documents}: query a text; positive a text or a list of
    texts (may be empty: the row then scores 0); negative / documents a list of texts (documents ranked best
    first)."""

    same_task_as = "reranking"

    def __init__(self, params: CrossEncoderRerankingParams, samples: list[RerankingSample], ranked: bool) -> None:
        super().__init__(params, {})
        self.samples, self.ranked = samples, ranked

    @classmethod
    def from_params(cls, params: CrossEncoderRerankingParams, where: str) -> "CrossEncoderRerankingEvaluator":
        dataset = load_source(params, where)
        ranked = params.ranked() or (params.columns is None and "documents" in dataset.column_names)
        mapping = resolve_columns(dataset.column_names, RANKED if ranked else NEGATIVES, params.columns,
                                  params.ignored_columns(), where)
        columns = {role: _checked_texts(list(dataset[column]), column, role, where) for role, column in mapping.inputs}
        samples = [RerankingSample(query, tuple(positives), tuple(candidates)) for query, positives, candidates
                   in zip(*columns.values())]
        return cls(params, samples, ranked)

    @classmethod
    def metric_keys(cls, params: CrossEncoderRerankingParams) -> list[str]:
        return ranking_keys(params.at_k, params.ranked())

    @classmethod
    def primary_key(cls, params: CrossEncoderRerankingParams) -> str:
        return f"ndcg@{params.at_k}"

    def compute(self, model: PairScorer) -> dict[str, float]:
        return rerank_metrics(partial(self.relevance_scores, model), self.samples, self.ranked, self.params.at_k,
                              self.params.always_rerank_positives)


def _checked_texts(values: list, column: str, role: str, where: str) -> list:
    """The column's values, each a non-blank text (query) or a list of them (a single text becomes a one-item list);
    DataError naming the column, its rows and the fix."""
    is_query = role == "query"
    problems = {}
    for row, value in enumerate(values):
        items = [value] if isinstance(value, str) and not is_query else value
        if is_query:
            ok = isinstance(value, str) and value.strip() != ""
        else:
            ok = isinstance(items, list) and all(isinstance(item, str) and item.strip() for item in items)
        if not ok:
            problems[row] = value
    if problems:
        rows = list(problems)
        shown = ", ".join(map(str, rows[:ROWS_SHOWN])) + (", ..." if len(rows) > ROWS_SHOWN else "")
        expected = "a non-empty text" if is_query else "a list of non-empty texts (or one text)"
        raise DataError(f"{where}: column {column!r} ({role}) must hold {expected} in every row; it does not at "
                        f"{'row' if len(rows) == 1 else 'rows'} {shown} ({len(rows)} in all, e.g. "
                        f"{problems[rows[0]]!r}); fix or drop those rows")
    return values if is_query else [[value] if isinstance(value, str) else value for value in values]

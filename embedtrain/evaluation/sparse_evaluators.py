"""Sparse STS, binary classification, triplet and reranking evaluators: the dense evaluators, scoring with the dot
product by default where the reference does (STS, binary, triplet: a sparse model's similarity; reranking keeps
cosine, as the reference's), plus the reference's sparsity statistics of the embeddings they compute:

- `active_dims`: mean non-zero dimensions per embedded text, `sparsity_ratio`: 1 - active_dims / dimensions;
- STS and binary report them over all texts embedded (STS: every row of both columns; binary: each distinct text
  once), triplet per side (`anchor_`, `positive_`, `negative_`), reranking per side (`query_`, `corpus_`).

Each dense evaluator embeds through its `embed` hook; here that hook also records each call's statistics, and the
calls map, in order, onto the sides above (the reference records them in its `embed_inputs` the same way).
"""

from typing import ClassVar, Literal

import torch
from pydantic import Field

from embedtrain.evaluation.binary_evaluator import BinaryClassificationEvaluator, BinaryClassificationParams
from embedtrain.evaluation.registry import SimilarityNames, register_evaluator
from embedtrain.evaluation.reranking_evaluator import RerankingEvaluator, RerankingParams
from embedtrain.evaluation.similarity_evaluator import EmbeddingSimilarityEvaluator, EmbeddingSimilarityParams
from embedtrain.evaluation.sparse_retrieval_evaluators import DOT_DEFAULT, NO_TRUNCATION
from embedtrain.evaluation.triplet_evaluator import TripletEvaluator, TripletParams
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.sparse_embedder import SparseEmbedder

STATS = ("active_dims", "sparsity_ratio")


class SparsityPerCall:
    """Mixin over a dense evaluator: `embed` also records the sparsity of each call, and `compute` adds them to the
    metrics as `{side}_{stat}`, the n-th call being `sides[n]` ("" for no prefix); calls of the same side average."""

    sides: ClassVar[tuple[str, ...]]
    calls: list[dict[str, float]]
    model_kinds: ClassVar[tuple[str, ...]] = ("sparse",)

    @classmethod
    def sparsity_keys(cls) -> list[str]:
        return [f"{side}_{stat}" if side else stat for side in dict.fromkeys(cls.sides) for stat in STATS]

    @classmethod
    def metric_keys(cls, params) -> list[str]:
        return super().metric_keys(params) + cls.sparsity_keys()

    def embed(self, model: SentenceEmbedder, texts: list[str], batch_size: int, truncate_dim: int | None = None,
              prompt_name: str | None = None, prompt: str | None = None, task: str | None = None) -> torch.Tensor:
        embeddings = super().embed(model, texts, batch_size, truncate_dim, prompt_name, prompt, task)
        self.calls.append(SparseEmbedder.sparsity(embeddings))
        return embeddings

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        self.calls = []
        metrics = super().compute(model)
        if len(self.calls) != len(self.sides):
            raise AssertionError(f"{type(self).__name__}: {len(self.calls)} embedding calls, expected "
                                 f"{len(self.sides)} ({self.sides})")
        per_side: dict[str, list[dict[str, float]]] = {}
        for side, stats in zip(self.sides, self.calls):
            per_side.setdefault(side, []).append(stats)
        for side, calls in per_side.items():
            for stat in STATS:
                metrics[f"{side}_{stat}" if side else stat] = sum(call[stat] for call in calls) / len(calls)
        return metrics


class SparseEmbeddingSimilarityParams(EmbeddingSimilarityParams):
    type: Literal["sparse_sts"]
    truncate_dim: None = NO_TRUNCATION
    similarity_fn_names: SimilarityNames = DOT_DEFAULT
    precision: None = Field(None, description="not available for sparse models (nor in the reference)")


@register_evaluator(SparseEmbeddingSimilarityParams)
class SparseEmbeddingSimilarityEvaluator(SparsityPerCall, EmbeddingSimilarityEvaluator):
    """STS correlations plus `active_dims` / `sparsity_ratio` over both columns (every row)."""

    sides = ("",)


class SparseBinaryClassificationParams(BinaryClassificationParams):
    type: Literal["sparse_binary"]
    truncate_dim: None = NO_TRUNCATION
    similarity_fn_names: SimilarityNames = DOT_DEFAULT


@register_evaluator(SparseBinaryClassificationParams)
class SparseBinaryClassificationEvaluator(SparsityPerCall, BinaryClassificationEvaluator):
    """Binary classification metrics plus `active_dims` / `sparsity_ratio` over the distinct texts."""

    sides = ("",)


class SparseTripletParams(TripletParams):
    type: Literal["sparse_triplet"]
    truncate_dim: None = NO_TRUNCATION
    similarity_fn_names: SimilarityNames = DOT_DEFAULT


@register_evaluator(SparseTripletParams)
class SparseTripletEvaluator(SparsityPerCall, TripletEvaluator):
    """Triplet accuracy plus the sparsity of anchors (queries), positives and negatives (documents)."""

    sides = ("anchor", "positive", "negative")


class SparseRerankingParams(RerankingParams):
    type: Literal["sparse_reranking"]
    truncate_dim: None = NO_TRUNCATION


@register_evaluator(SparseRerankingParams)
class SparseRerankingEvaluator(SparsityPerCall, RerankingEvaluator):
    """Reranking MAP / MRR@k / nDCG@k plus the sparsity of the queries and of the candidate documents (cosine by
    default, as the reference's)."""

    sides = ("query", "corpus")

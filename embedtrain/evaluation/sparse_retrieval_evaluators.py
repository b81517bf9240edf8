"""Sparse retrieval evaluators: the dense IR and NanoBEIR evaluators, scoring with the dot product by default, plus
the reference's sparsity statistics of the embeddings they compute:

- `query_active_dims`, `corpus_active_dims`: mean non-zero dimensions per query / per document;
- `query_sparsity_ratio`, `corpus_sparsity_ratio`: 1 - active / dimensions;
- `avg_flops`: dot(mean query non-zero indicator vector, mean document one), the expected number of
  multiply-adds per query-document pair of an inverted-index search.

NanoBEIR's aggregates weight each set by its number of queries (documents), and recompute `avg_flops` from the
summed indicator vectors, as the reference does.
"""

from typing import ClassVar, Literal

import torch
from pydantic import Field

from embedtrain.evaluation.ir_evaluator import InformationRetrievalEvaluator, InformationRetrievalParams
from embedtrain.evaluation.nanobeir_evaluator import NanoBEIREvaluator, NanoBEIRParams
from embedtrain.evaluation.registry import SimilarityNames, embed_rows, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.sparse_embedder import active_counts

SPARSITY_KEYS = ("query_active_dims", "query_sparsity_ratio", "corpus_active_dims", "corpus_sparsity_ratio", "avg_flops")
SIDES = {"query": "query", "document": "corpus"}
DOT_DEFAULT = Field(default_factory=lambda: ["dot"], min_length=1, description="default: the dot product, as sparse "
                    "models are compared")
NO_TRUNCATION = Field(None, description="not available for sparse models (nor in the reference): their dimensions are "
                      "vocabulary ids or latents, not a Matryoshka prefix")


class SideCounts:
    """Per side (query / corpus): rows embedded, summed active dimensions, and the summed non-zero indicator vector."""

    def __init__(self) -> None:
        self.rows = {"query": 0, "corpus": 0}
        self.active = {"query": 0.0, "corpus": 0.0}
        self.nonzero: dict[str, torch.Tensor] = {}
        self.dim = 0

    def add(self, side: str, embeddings: torch.Tensor) -> None:
        self.dim = embeddings.size(1)
        self.rows[side] += embeddings.size(0)
        self.active[side] += float(active_counts(embeddings).sum())
        indicator = (embeddings.coalesce() if embeddings.is_sparse else embeddings.to_sparse()).coalesce()
        columns = indicator.indices()[1][indicator.values() != 0]
        counts = torch.bincount(columns, minlength=self.dim).double()
        self.nonzero[side] = self.nonzero[side] + counts if side in self.nonzero else counts

    def merge(self, other: "SideCounts") -> None:
        for side in ("query", "corpus"):
            self.rows[side] += other.rows[side]
            self.active[side] += other.active[side]
            if side in other.nonzero:
                self.nonzero[side] = self.nonzero[side] + other.nonzero[side] if side in self.nonzero else other.nonzero[side]
        self.dim = other.dim

    def metrics(self) -> dict[str, float]:
        result = {}
        for side in ("query", "corpus"):
            active = self.active[side] / max(self.rows[side], 1)
            result |= {f"{side}_active_dims": active, f"{side}_sparsity_ratio": 1.0 - active / max(self.dim, 1)}
        if self.rows["query"] and self.rows["corpus"]:
            flops = torch.dot(self.nonzero["query"] / self.rows["query"], self.nonzero["corpus"] / self.rows["corpus"])
            result["avg_flops"] = float(flops)
        else:
            result["avg_flops"] = 0.0
        return {key: result[key] for key in SPARSITY_KEYS}


class RecordingEvaluator:
    """Mixin: `embed` also counts each side's sparsity into `self.counts`."""

    counts: SideCounts
    model_kinds: ClassVar[tuple[str, ...]] = ("sparse",)

    def embed(self, model: SentenceEmbedder, texts: list[str], batch_size: int, truncate_dim: int | None = None,
              prompt_name: str | None = None, prompt: str | None = None, task: str | None = None) -> torch.Tensor:
        embeddings = embed_rows(model, texts, batch_size, truncate_dim, prompt_name, prompt, task)
        self.counts.add(SIDES[task], embeddings)
        return embeddings


class SparseInformationRetrievalParams(InformationRetrievalParams):
    type: Literal["sparse_ir"]
    truncate_dim: None = NO_TRUNCATION
    score_functions: SimilarityNames = DOT_DEFAULT


@register_evaluator(SparseInformationRetrievalParams)
class SparseInformationRetrievalEvaluator(RecordingEvaluator, InformationRetrievalEvaluator):
    """The IR evaluator's metrics plus the sparsity statistics of queries and corpus."""

    @classmethod
    def metric_keys(cls, params: SparseInformationRetrievalParams) -> list[str]:
        return super().metric_keys(params) + list(SPARSITY_KEYS)

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        self.counts = SideCounts()
        return super().compute(model) | self.counts.metrics()


class SparseNanoBEIRParams(NanoBEIRParams):
    type: Literal["sparse_nanobeir"]
    truncate_dim: None = NO_TRUNCATION
    score_functions: SimilarityNames = DOT_DEFAULT


@register_evaluator(SparseNanoBEIRParams)
class SparseNanoBEIREvaluator(RecordingEvaluator, NanoBEIREvaluator):
    """NanoBEIR's metrics plus the sparsity statistics per set (`{set}_query_active_dims`, ...) and over all sets
    (`NanoBEIR_mean_query_active_dims`, ..., `NanoBEIR_mean_avg_flops`)."""

    @classmethod
    def metric_keys(cls, params: SparseNanoBEIRParams) -> list[str]:
        per_set = [f"{prefix}_{key}" for prefix in cls.set_prefixes(params) for key in SPARSITY_KEYS]
        return super().metric_keys(params) + per_set + [f"{cls.aggregate_prefix(params)}_{key}" for key in SPARSITY_KEYS]

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        total, per_set = SideCounts(), {}
        metrics = {}
        for prefix in self.sets:
            self.counts = SideCounts()
            metrics |= self.compute_set(model, prefix)
            per_set[prefix] = self.counts.metrics()
            total.merge(self.counts)
        metrics |= self.aggregate(metrics)
        for prefix, values in per_set.items():
            metrics |= {f"{prefix}_{key}": value for key, value in values.items()}
        return metrics | {f"{self.aggregate_prefix(self.params)}_{key}": value for key, value in total.metrics().items()}

"""Reranking: for each query, order its own positives and negatives by similarity; MAP, MRR@k and nDCG@k."""

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from embedtrain.data.contract import ColumnContract, resolve_columns
from embedtrain.data.source import load_source
from embedtrain.errors import DataError
from embedtrain.evaluation.metrics import average_precision, ndcg_tie_averaged
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import MATRIX


class RerankingParams(EvaluatorParams):
    type: Literal["reranking"]
    at_k: int = Field(10, gt=0, description="cut-off of MRR and nDCG")
    similarity_fn_name: Literal["cosine", "dot", "euclidean", "manhattan"] = "cosine"
    batch_size: int = Field(64, gt=0, description="texts per forward pass when embedding")


@register_evaluator(RerankingParams)
class RerankingEvaluator(Evaluator):
    """Rows {query, positive: [texts], negative: [texts]} (a single text is a one-item list); rows without a
    positive or a negative are skipped, as the reference does."""

    contract: ClassVar = ColumnContract(inputs=("query", "positive", "negative"))

    @classmethod
    def from_params(cls, params: RerankingParams, where: str) -> "RerankingEvaluator":
        dataset = load_source(params, where)
        mapping = resolve_columns(dataset.column_names, cls.contract, params.columns, params.ignored_columns(), where)
        columns = {}
        for role, column in mapping.inputs:
            # Checked per value: a JSON column mixing texts and lists of texts has no single arrow type.
            values = dataset[column]
            bad = [row for row, value in enumerate(values) if not _is_text_or_texts(value, role == "query")]
            if bad:
                expected = "a text" if role == "query" else "a text or a list of texts"
                raise DataError(f"{where}: column {column!r} ({role}) must hold {expected} in every row; rows "
                                f"{bad[:5]} do not (e.g. {values[bad[0]]!r})")
            columns[role] = values
        samples = [{"query": query, "positive": _as_list(positive), "negative": _as_list(negative)}
                   for query, positive, negative in zip(columns["query"], columns["positive"], columns["negative"])]
        samples = [sample for sample in samples if sample["positive"] and sample["negative"]]
        if not samples:
            raise DataError(f"{where}: no row has both a positive and a negative")
        return cls(params, {"samples": samples})

    @classmethod
    def metric_keys(cls, params: RerankingParams) -> list[str]:
        return ["map", f"mrr@{params.at_k}", f"ndcg@{params.at_k}"]

    @classmethod
    def primary_key(cls, params: RerankingParams) -> str:
        return f"ndcg@{params.at_k}"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        params, samples = self.params, self.columns["samples"]
        queries = self.embed(model, [s["query"] for s in samples], params.batch_size, params.truncate_dim, "query",
                             task="query")
        documents = self.embed(model, [text for s in samples for text in s["positive"] + s["negative"]],
                               params.batch_size, params.truncate_dim, "document", task="document")
        average_precisions, reciprocal_ranks, ndcgs = [], [], []
        start = 0
        # Rows picked with index_select, not slices or iteration: a sparse model's (COO) embeddings allow neither.
        for row, sample in enumerate(samples):
            relevance = np.array([1] * len(sample["positive"]) + [0] * len(sample["negative"]))
            query = queries.index_select(0, torch.tensor([row]))
            candidates = documents.index_select(0, torch.arange(start, start + len(relevance)))
            start += len(relevance)
            scores = MATRIX[params.similarity_fn_name](query, candidates)[0].numpy()
            ranked = relevance[np.argsort(-scores, kind="stable")][:params.at_k]
            reciprocal_ranks.append(1.0 / (np.argmax(ranked) + 1) if ranked.any() else 0.0)
            ndcgs.append(ndcg_tie_averaged(relevance, scores, params.at_k))
            average_precisions.append(average_precision(relevance, scores))
        return {"map": float(np.mean(average_precisions)), f"mrr@{params.at_k}": float(np.mean(reciprocal_ranks)),
                f"ndcg@{params.at_k}": float(np.mean(ndcgs))}


def _is_text_or_texts(value: object, text_only: bool) -> bool:
    if isinstance(value, str):
        return True
    return not text_only and isinstance(value, list) and all(isinstance(item, str) for item in value)


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)

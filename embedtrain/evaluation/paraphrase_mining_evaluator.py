"""Paraphrase mining: find the most similar sentence pairs among all sentences; score them against known duplicates."""

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from embedtrain.data.contract import ColumnContract
from embedtrain.evaluation.metrics import mined_pairs_metrics
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, embed_unique, register_evaluator
from embedtrain.evaluation.retrieval import top_k_search
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import MATRIX


class ParaphraseMiningParams(EvaluatorParams):
    type: Literal["paraphrase_mining"]
    top_k: int = Field(100, gt=0, description="neighbours kept per sentence")
    max_pairs: int = Field(500000, gt=0, description="most similar pairs kept overall")
    add_transitive_closure: bool = Field(False, description="duplicates of duplicates are duplicates")
    corpus_chunk_size: int = Field(100000, gt=0, description="sentences scored at once (memory: sentences x chunk)")
    batch_size: int = Field(16, gt=0, description="texts per forward pass when embedding")


@register_evaluator(ParaphraseMiningParams)
class ParaphraseMiningEvaluator(Evaluator):
    """Rows (sentence1, sentence2, label): the sentences are every distinct text of both columns; rows labelled 1
    are the known duplicate pairs (rows labelled 0 only add sentences)."""

    contract: ClassVar = ColumnContract(inputs=("sentence1", "sentence2"), label="binary")

    @classmethod
    def metric_keys(cls, params: ParaphraseMiningParams) -> list[str]:
        return ["average_precision", "f1", "precision", "recall", "threshold"]

    @classmethod
    def primary_key(cls, params: ParaphraseMiningParams) -> str:
        return "average_precision"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        params = self.params
        first, second = self.columns["sentence1"], self.columns["sentence2"]
        embeddings, index = embed_unique(model, first + second, params.batch_size, truncate_dim=params.truncate_dim)
        duplicates = {_pair(index[a], index[b]) for a, b, label in zip(first, second, self.columns["label"])
                      if label == 1 and a != b}
        if params.add_transitive_closure:
            duplicates = transitive_closure(duplicates)
        pairs = mine_pairs(embeddings, params.top_k, params.max_pairs, params.corpus_chunk_size)
        scores = np.array([score for score, _ in pairs])
        is_duplicate = np.array([pair in duplicates for _, pair in pairs], dtype=bool)
        return mined_pairs_metrics(scores, is_duplicate, len(duplicates))


def _pair(i: int, j: int) -> tuple[int, int]:
    return (i, j) if i < j else (j, i)


def mine_pairs(embeddings, top_k: int, max_pairs: int, chunk_size: int) -> list[tuple[float, tuple[int, int]]]:
    """The `max_pairs` most similar (cosine) distinct pairs among each sentence's `top_k` neighbours, best first."""
    scores, rows = top_k_search(embeddings, embeddings, MATRIX["cosine"], top_k + 1, chunk_size)
    best: dict[tuple[int, int], float] = {}
    for i, (neighbour_scores, neighbours) in enumerate(zip(scores.tolist(), rows.tolist())):
        kept = [(j, score) for j, score in zip(neighbours, neighbour_scores) if j != i][:top_k]
        for j, score in kept:
            best.setdefault(_pair(i, j), score)  # the first direction's score, as the reference keeps
    ranked = sorted(best.items(), key=lambda item: -item[1])[:max_pairs]
    return [(score, pair) for pair, score in ranked]


def transitive_closure(pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Every pair within each connected component of the duplicate graph."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for i, j in pairs:
        parent[root(i)] = root(j)
    components: dict[int, list[int]] = {}
    for node in parent:
        components.setdefault(root(node), []).append(node)
    return {_pair(a, b) for members in components.values() for a in members for b in members if a < b}

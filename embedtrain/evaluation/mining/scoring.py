"""Teacher scores of (query, text) pairs: from a cross-encoder (a reranker) or a bi-encoder.

Anything with `predict(pairs, batch_size) -> Tensor (pairs,)` scores pairs: embedtrain's CrossEncoder (its scores
with its activation applied), or `BiEncoderScorer`, which embeds each distinct text once and scores every pair with
the model's similarity. `mine --rescore` re-scores the candidates with one; `score` adds its scores to rows.
"""

from typing import Protocol

import torch
from torch import Tensor

from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.progress import NoProgress, Progress
from embedtrain.evaluation.mining.search import comparable, embed_texts
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import PAIRWISE, SimilarityName

PAIRS_PER_STEP = 16
"""Batches of pairs a cross-encoder scores between two progress updates."""


class PairScorer(Protocol):
    def predict(self, pairs: list[tuple[str, str]], batch_size: int) -> Tensor:
        """One score per (query, text) pair, (pairs,) float, higher is more relevant."""


class BiEncoderScorer:
    """A bi-encoder as a teacher: the similarity of the query's embedding (query prompt and route) and the text's
    (document prompt and route), each distinct text embedded once."""

    def __init__(self, model: SentenceEmbedder, similarity: SimilarityName | None = None,
                 query_prompt: str | None = None, query_prompt_name: str | None = None,
                 document_prompt: str | None = None, document_prompt_name: str | None = None) -> None:
        self.model = model
        self.similarity: SimilarityName = similarity or model.similarity_fn_name
        self.query_prompt, self.query_prompt_name = query_prompt, query_prompt_name
        self.document_prompt, self.document_prompt_name = document_prompt, document_prompt_name

    def predict(self, pairs: list[tuple[str, str]], batch_size: int, progress: Progress = NoProgress()) -> Tensor:
        queries = list(dict.fromkeys(query for query, _ in pairs))
        documents = list(dict.fromkeys(document for _, document in pairs))
        query_embeddings, similarity = comparable(
            embed_texts(self.model, queries, "query", batch_size, self.query_prompt_name, self.query_prompt,
                        progress, "queries"), self.similarity)
        document_embeddings, _ = comparable(
            embed_texts(self.model, documents, "document", batch_size, self.document_prompt_name,
                        self.document_prompt, progress, "texts"), self.similarity)
        query_row = {text: row for row, text in enumerate(queries)}
        document_row = {text: row for row, text in enumerate(documents)}
        query_rows = torch.tensor([query_row[query] for query, _ in pairs], dtype=torch.long)
        document_rows = torch.tensor([document_row[document] for _, document in pairs], dtype=torch.long)
        return PAIRWISE[similarity](query_embeddings.index_select(0, query_rows),
                                    document_embeddings.index_select(0, document_rows)).float()


def score_pairs(scorer: PairScorer, pairs: list[tuple[str, str]], batch_size: int, progress: Progress,
                stage: str = "scoring pairs") -> Tensor:
    """`scorer`'s scores of `pairs` -> (pairs,) float32 on the CPU, with progress.

    A bi-encoder reports its own progress (texts embedded); any other scorer gets the pairs a few batches at a
    time, the progress advancing after each."""
    if isinstance(scorer, BiEncoderScorer):
        scores = scorer.predict(pairs, batch_size, progress)
    else:
        progress.stage(stage, len(pairs))
        step = batch_size * PAIRS_PER_STEP
        parts = []
        for start in range(0, len(pairs), step):
            parts.append(torch.as_tensor(scorer.predict(pairs[start:start + step], batch_size)).float().cpu().reshape(-1))
            progress.advance(len(parts[-1]))
        scores = torch.cat(parts) if parts else torch.empty(0)
    if len(scores) != len(pairs):
        raise ValueError(f"the scorer gave {len(scores)} scores for {len(pairs)} pairs")
    if not bool(torch.isfinite(scores).all()):
        raise RecipeError(f"the scoring model gives non-finite scores (NaN or inf) for "
                          f"{int((~torch.isfinite(scores)).sum())} of {len(pairs)} pairs; it cannot be used as a teacher")
    return scores


def score_columns(queries: list[str], candidates: list[list[str]], scorer: PairScorer, batch_size: int,
                  progress: Progress) -> Tensor:
    """The teacher's score of each query with each of its candidates: candidates is one list of texts per candidate
    column (positive, negatives...) -> (rows, candidate columns)."""
    pairs = [(query, column[row]) for column in candidates for row, query in enumerate(queries)]
    return score_pairs(scorer, pairs, batch_size, progress).reshape(len(candidates), len(queries)).T

"""Embed queries and corpus, and find each query's nearest corpus texts: exact or with faiss.

The exact search is the retrieval evaluation's (`top_k_search`: corpus chunks, ties broken by corpus row), run over
blocks of `chunk_size` queries, so memory stays at chunk_size x chunk_size scores whatever the number of queries
and corpus texts. Cosine similarity normalises the embeddings once and then compares them with dot products.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.progress import Progress, counting_forward_passes
from embedtrain.evaluation.registry import embed_rows
from embedtrain.evaluation.retrieval import top_k_search
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import MATRIX, PAIRWISE, SimilarityName

FAISS_MISSING = "--search faiss needs the faiss package: pip install 'embedtrain[faiss]' (or pip install faiss-cpu)"


def embed_texts(model: SentenceEmbedder, texts: list[str], route: Literal["query", "document"], batch_size: int,
                prompt_name: str | None, prompt: str | None, progress: Progress, what: str) -> Tensor:
    """Embeddings of distinct `texts` (in order) with the route's prompt (`prompt`, else `prompt_name`, else the
    model's `query`/`document` prompt) and the route itself for a model with a router. `what` the texts are (e.g.
    "queries"), for the progress and errors."""
    progress.stage(f"embedding {what}", len(texts))
    with counting_forward_passes(model, progress):
        embeddings = embed_rows(model, texts, batch_size, None, prompt_name or route, prompt, task=route)
    finite = torch.isfinite(embeddings.coalesce().values() if embeddings.is_sparse else embeddings)
    if not bool(finite.all()):
        raise RecipeError(f"the model gives non-finite embeddings (NaN or inf) for {what}; it cannot be used to mine "
                          f"(check its weights, or its precision)")
    return embeddings


def comparable(embeddings: Tensor, similarity: SimilarityName) -> tuple[Tensor, SimilarityName]:
    """Dense cosine: the embeddings normalised once, compared by dot product from then on."""
    if similarity == "cosine" and not embeddings.is_sparse:
        return F.normalize(embeddings, p=2, dim=-1), "dot"
    return embeddings, similarity


def nearest(queries: Tensor, corpus: Tensor, similarity: SimilarityName, k: int, chunk_size: int,
            search: Literal["exact", "faiss"], progress: Progress) -> tuple[Tensor, Tensor]:
    """The `min(k, corpus)` best corpus rows per query, best first: (scores, rows), each (queries, min(k, corpus))."""
    k = min(k, len(corpus))
    progress.stage("searching", len(queries))
    index = _faiss_index(corpus) if search == "faiss" else None
    scores, rows = [], []
    for start in range(0, len(queries), chunk_size):
        block = torch.narrow_copy(queries, 0, start, min(chunk_size, len(queries) - start))
        if index is None:
            block_scores, block_rows = top_k_search(block, corpus, MATRIX[similarity], k, chunk_size)
        else:
            found_scores, found_rows = index.search(block.numpy(), k)
            block_scores, block_rows = torch.from_numpy(found_scores), torch.from_numpy(found_rows)
        scores.append(block_scores)
        rows.append(block_rows)
        progress.advance(len(block))
    return torch.cat(scores), torch.cat(rows)


def check_faiss(sparse: bool, similarity: SimilarityName) -> None:
    """RecipeError, before any embedding, when faiss is not installed or cannot search these embeddings (it takes
    dense ones compared by inner product: dot, or cosine once normalised)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise RecipeError(FAISS_MISSING) from None
    if sparse or similarity not in ("cosine", "dot"):
        raise RecipeError(f"--search faiss takes dense embeddings compared by cosine or dot product; this model's are "
                          f"{'sparse' if sparse else similarity}: use --search exact")


def _faiss_index(corpus: Tensor):
    import faiss

    index = faiss.IndexFlatIP(corpus.size(1))
    index.add(corpus.contiguous().numpy())
    return index


def pair_scores(queries: Tensor, corpus: Tensor, positives: list[list[int]], similarity: SimilarityName) -> Tensor:
    """The score of every (query, positive) pair, query by query, positives in order -> (pairs,)."""
    query_rows = torch.tensor([query for query, rows in enumerate(positives) for _ in rows], dtype=torch.long)
    corpus_rows = torch.tensor([row for rows in positives for row in rows], dtype=torch.long)
    return PAIRWISE[similarity](queries.index_select(0, query_rows), corpus.index_select(0, corpus_rows)).float()

"""Exact top-k search of queries over a corpus, in corpus chunks, with the reference's tie-breaking.

Results are ordered by (-score, corpus row); callers put the corpus in ascending corpus-id order so that
ties break by corpus id, as the reference's final ranking does. The result never depends on the chunk size.
"""

from collections.abc import Callable

import torch
from torch import Tensor


def _chunk_top_k(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k best columns of each row of `scores` (queries, chunk) by (-score, column) -> (values, columns)."""
    values, columns = scores.topk(k, dim=1)
    # topk orders ties arbitrarily: order the candidates by column, then stably by score.
    columns = columns.sort(dim=1).values
    values = scores.gather(1, columns)
    order = values.sort(dim=1, descending=True, stable=True).indices
    values, columns = values.gather(1, order), columns.gather(1, order)
    # Where more columns tie with the k-th score than fit, topk may have kept the wrong ones: redo those rows in full.
    overflowing = (scores >= values[:, -1:]).sum(dim=1) > k
    if overflowing.any():
        full = scores[overflowing].sort(dim=1, descending=True, stable=True)
        values[overflowing], columns[overflowing] = full.values[:, :k], full.indices[:, :k]
    return values, columns


def top_k_search(queries: Tensor, corpus: Tensor, score_fn: Callable[[Tensor, Tensor], Tensor], k: int,
                 chunk_size: int) -> tuple[Tensor, Tensor]:
    """Best `k` corpus rows per query: (scores (queries, min(k, corpus)), corpus rows (same shape)), best first.

    queries: (q, d) and corpus: (n, d) embeddings; score_fn: (q, d) x (m, d) -> (q, m), higher is better.
    The corpus is scored `chunk_size` rows at a time, so memory stays at q x chunk_size scores.
    """
    best_scores = torch.empty((len(queries), 0), dtype=torch.float32)
    best_rows = torch.empty((len(queries), 0), dtype=torch.long)
    for start in range(0, len(corpus), chunk_size):
        # narrow_copy also cuts sparse corpora, which cannot be sliced.
        chunk = torch.narrow_copy(corpus, 0, start, min(chunk_size, len(corpus) - start))
        scores = score_fn(queries, chunk).float()
        values, columns = _chunk_top_k(scores, min(k, scores.shape[1]))
        # Earlier chunks hold lower rows, so a stable sort of [best so far, this chunk] keeps ties by row.
        merged_scores = torch.cat([best_scores, values], dim=1)
        merged_rows = torch.cat([best_rows, columns + start], dim=1)
        order = merged_scores.sort(dim=1, descending=True, stable=True).indices[:, :k]
        best_scores, best_rows = merged_scores.gather(1, order), merged_rows.gather(1, order)
    return best_scores, best_rows

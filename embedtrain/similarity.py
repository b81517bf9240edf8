"""Similarity functions shared by models, losses and evaluators.

Names follow the reference (`cosine`, `dot`, `euclidean`, `manhattan`). Distances are negated so
that for every function a higher score means more similar. Every function also takes sparse (COO) embeddings,
as sparse encoders produce them, and returns dense scores.
"""

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

SimilarityName = Literal["cosine", "dot", "euclidean", "manhattan"]


def _normalize(x: Tensor) -> Tensor:
    """Rows scaled to unit L2 norm (zero rows stay zero); a sparse input stays sparse."""
    if not x.is_sparse:
        return F.normalize(x, p=2, dim=-1)
    x = x.coalesce()
    norms = torch.sparse.sum(x * x, dim=1).to_dense().sqrt().clamp_min(1e-12)
    return torch.sparse_coo_tensor(x.indices(), x.values() / norms[x.indices()[0]], x.shape, is_coalesced=True,
                                   check_invariants=False)


def _dense(x: Tensor) -> Tensor:
    return x.to_dense() if x.is_sparse else x


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """(n, d) x (m, d) -> (n, m) cosine similarities."""
    return dot_matrix(_normalize(a), _normalize(b))


def dot_matrix(a: Tensor, b: Tensor) -> Tensor:
    if b.is_sparse and (not a.is_sparse or len(a) <= len(b)):
        return (b @ _dense(a).T).T  # sparse x dense: the side with fewer rows is made dense
    if a.is_sparse:
        return a @ _dense(b).T
    return a @ b.T


def euclidean_matrix(a: Tensor, b: Tensor) -> Tensor:
    return -torch.cdist(_dense(a), _dense(b), p=2.0)


def manhattan_matrix(a: Tensor, b: Tensor) -> Tensor:
    return -torch.cdist(_dense(a), _dense(b), p=1.0)


def cosine_pairwise(a: Tensor, b: Tensor) -> Tensor:
    """(n, d) x (n, d) -> (n,) cosine similarity of each row pair."""
    return dot_pairwise(_normalize(a), _normalize(b))


def dot_pairwise(a: Tensor, b: Tensor) -> Tensor:
    if a.is_sparse and b.is_sparse:
        return torch.sparse.sum((a * b).coalesce(), dim=1).to_dense()
    return (_dense(a) * _dense(b)).sum(dim=-1)


def euclidean_pairwise(a: Tensor, b: Tensor) -> Tensor:
    return -torch.linalg.vector_norm(_dense(a) - _dense(b), ord=2, dim=-1)


def manhattan_pairwise(a: Tensor, b: Tensor) -> Tensor:
    return -torch.linalg.vector_norm(_dense(a) - _dense(b), ord=1, dim=-1)


MATRIX: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cosine": cosine_matrix,
    "dot": dot_matrix,
    "euclidean": euclidean_matrix,
    "manhattan": manhattan_matrix,
}
PAIRWISE: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cosine": cosine_pairwise,
    "dot": dot_pairwise,
    "euclidean": euclidean_pairwise,
    "manhattan": manhattan_pairwise,
}

"""Similarity functions shared by models, losses and evaluators.

Names follow the reference (`cosine`, `dot`, `euclidean`, `manhattan`). Distances are negated so
that for every function a higher score means more similar.
"""

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

SimilarityName = Literal["cosine", "dot", "euclidean", "manhattan"]


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """(n, d) x (m, d) -> (n, m) cosine similarities."""
    return F.normalize(a, p=2, dim=-1) @ F.normalize(b, p=2, dim=-1).T


def dot_matrix(a: Tensor, b: Tensor) -> Tensor:
    return a @ b.T


def euclidean_matrix(a: Tensor, b: Tensor) -> Tensor:
    return -torch.cdist(a, b, p=2.0)


def manhattan_matrix(a: Tensor, b: Tensor) -> Tensor:
    return -torch.cdist(a, b, p=1.0)


def cosine_pairwise(a: Tensor, b: Tensor) -> Tensor:
    """(n, d) x (n, d) -> (n,) cosine similarity of each row pair."""
    return (F.normalize(a, p=2, dim=-1) * F.normalize(b, p=2, dim=-1)).sum(dim=-1)


def dot_pairwise(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=-1)


def euclidean_pairwise(a: Tensor, b: Tensor) -> Tensor:
    return -torch.linalg.vector_norm(a - b, ord=2, dim=-1)


def manhattan_pairwise(a: Tensor, b: Tensor) -> Tensor:
    return -torch.linalg.vector_norm(a - b, ord=1, dim=-1)


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

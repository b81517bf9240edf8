"""Distances between the two embeddings of each pair, as the pair losses (contrastive, triplet) define them."""

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

PairDistanceName = Literal["cosine", "euclidean", "manhattan"]


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 - cos(a_i, b_i)."""
    return 1 - F.cosine_similarity(a, b)


def euclidean_distance(a: Tensor, b: Tensor) -> Tensor:
    """||a_i - b_i + eps||_2 (torch's pairwise_distance, eps = 1e-6, keeps the gradient finite at 0)."""
    return F.pairwise_distance(a, b, p=2)


def manhattan_distance(a: Tensor, b: Tensor) -> Tensor:
    return F.pairwise_distance(a, b, p=1)


PAIR_DISTANCES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cosine": cosine_distance,
    "euclidean": euclidean_distance,
    "manhattan": manhattan_distance,
}

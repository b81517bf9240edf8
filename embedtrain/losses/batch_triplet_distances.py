"""All-pairs distance matrices and label masks for the batch triplet losses (single texts with class labels)."""

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedtrain.similarity import cosine_matrix

BatchDistanceName = Literal["euclidean", "cosine"]
DISTANCE_FIELD = Field("euclidean", description="euclidean or cosine (1 - cos) distance between the batch's embeddings")
MARGIN_FIELD = Field(5.0, description="a negative must be this much farther from the anchor than a positive")


def euclidean_distances(embeddings: Tensor) -> Tensor:
    """(n, d) -> (n, n) ||e_i - e_j||₂ from the Gram matrix: sqrt(|e_i|² - 2 e_i·e_j + |e_j|²).

    Computed in float32 (the expansion cancels badly in half precision); negative round-off is
    clamped to 0, and exact zeros get no gradient (a 1e-16 is added under the root, then masked).
    """
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        gram = embeddings.float() @ embeddings.float().T
    squared_norms = torch.diag(gram)
    squared = (squared_norms.unsqueeze(0) - 2.0 * gram + squared_norms.unsqueeze(1)).clamp(min=0)
    zero = squared.eq(0).float()
    return (1.0 - zero) * torch.sqrt(squared + zero * 1e-16)


def cosine_distances(embeddings: Tensor) -> Tensor:
    return 1 - cosine_matrix(embeddings, embeddings)


BATCH_DISTANCES: dict[str, Callable[[Tensor], Tensor]] = {"euclidean": euclidean_distances, "cosine": cosine_distances}


def same_label(labels: Tensor) -> Tensor:
    """(n,) -> (n, n) bool, labels_i == labels_j."""
    return labels.unsqueeze(0) == labels.unsqueeze(1)


def positive_pairs(labels: Tensor) -> Tensor:
    """(n, n) bool: j is a positive of anchor i (same label, j != i)."""
    return same_label(labels) & ~torch.eye(labels.size(0), dtype=torch.bool, device=labels.device)


def hardest_distances(distances: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per anchor (n, 1): the distance to its farthest positive (0 if none) and to its closest negative
    (its farthest distance overall if it has no negative)."""
    hardest_positive = (positive_pairs(labels).float() * distances).max(dim=1, keepdim=True).values
    not_negative = same_label(labels).float()
    farthest = distances.max(dim=1, keepdim=True).values
    hardest_negative = (distances + farthest * not_negative).min(dim=1, keepdim=True).values
    return hardest_positive, hardest_negative

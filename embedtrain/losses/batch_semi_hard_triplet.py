from typing import Literal

import torch
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.batch_triplet_distances import (
    BATCH_DISTANCES,
    DISTANCE_FIELD,
    MARGIN_FIELD,
    BatchDistanceName,
    same_label,
)
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss


class BatchSemiHardTripletParams(LossParams):
    type: Literal["BatchSemiHardTripletLoss"]
    distance_metric: BatchDistanceName = DISTANCE_FIELD
    margin: float = MARGIN_FIELD


@register_loss
class BatchSemiHardTripletLoss(EmbeddingLoss):
    """Triplets with semi-hard negatives (FaceNet): for each (anchor, positive), the closest negative farther than the positive.

    For a pair (a, p) the negative distance is min{d(a,n) : d(a,n) > d(a,p)}, or, if no negative is
    farther, the farthest negative; `L = sum_{a,p} relu(d(a,p) - d_neg(a,p) + m) / #pairs` (Schroff et al., 2015).
    """

    Params = BatchSemiHardTripletParams
    contract = ColumnContract(inputs=("sentence",), label="class")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        labels = labels.view(-1)
        batch_size = labels.numel()
        distances = BATCH_DISTANCES[self.params.distance_metric](embeddings[0])
        same = same_label(labels)
        # Each anchor's negative distances in increasing order (same-label entries last, as +inf); for each
        # (anchor, candidate positive) the first negative strictly farther than the positive.
        sorted_negatives = distances.masked_fill(same, torch.inf).sort(dim=1, stable=True).values
        farther = torch.searchsorted(sorted_negatives.detach().contiguous(), distances.detach().contiguous(), right=True)
        next_farther = sorted_negatives.gather(1, farther.clamp(max=batch_size - 1))
        farthest = _masked_max(distances, ~same)
        negatives = torch.where(torch.isfinite(next_farther), next_farther, farthest)
        is_positive = same.float() - torch.eye(batch_size, device=labels.device)
        losses = ((distances - negatives + self.params.margin) * is_positive).clamp(min=0)
        return losses.sum() / is_positive.sum().clamp(min=1e-16)


def _masked_max(data: Tensor, mask: Tensor) -> Tensor:
    """(n, 1): the row maximum over the entries where `mask` is set (the row minimum if none is)."""
    minimums = data.min(dim=1, keepdim=True).values
    return ((data - minimums) * mask).max(dim=1, keepdim=True).values + minimums

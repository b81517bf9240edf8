"""Losses: importing this package registers every loss in `LOSSES`."""

from embedtrain.losses import cosent, cosine_similarity, multiple_negatives_ranking, softmax  # noqa: F401
from embedtrain.losses.registry import LOSSES, EmbeddingLoss, LossParams, build_loss, loss_contract

__all__ = ["LOSSES", "EmbeddingLoss", "LossParams", "build_loss", "loss_contract"]

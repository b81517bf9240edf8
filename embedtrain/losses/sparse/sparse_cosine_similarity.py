from typing import Literal

from embedtrain.losses.cosine_similarity import CosineSimilarityLoss, CosineSimilarityParams
from embedtrain.losses.registry import LOSSES, register_loss


class SparseCosineSimilarityParams(CosineSimilarityParams):
    type: Literal["SparseCosineSimilarityLoss"]


@register_loss(SparseCosineSimilarityParams, LOSSES[CosineSimilarityLoss.__name__].contract)
class SparseCosineSimilarityLoss(CosineSimilarityLoss):
    """CosineSimilarityLoss for sparse models: squared error between each pair's cosine similarity and its gold score.

    The maths of CosineSimilarityLoss. Used inside SpladeLoss or CSRLoss.
    """

    model_kinds = ()

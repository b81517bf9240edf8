from typing import Literal

from embedtrain.losses.cosine_similarity import CosineSimilarityLoss, CosineSimilarityParams
from embedtrain.losses.registry import register_loss


class SparseCosineSimilarityParams(CosineSimilarityParams):
    type: Literal["SparseCosineSimilarityLoss"]


@register_loss
class SparseCosineSimilarityLoss(CosineSimilarityLoss):
    """CosineSimilarityLoss for sparse models: squared error between each pair's cosine similarity and its gold score.

    The maths of CosineSimilarityLoss. Used inside SpladeLoss or CSRLoss.
    """

    Params = SparseCosineSimilarityParams
    model_kinds = ()
    sparse_inner_loss = True
    saved_similarity = "cosine"  # the reference's loss sets its model's similarity_fn_name to cosine

from typing import Literal

from pydantic import Field

from embedtrain.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss, MultipleNegativesRankingParams
from embedtrain.losses.registry import LOSSES, register_loss
from embedtrain.similarity import SimilarityName


class SparseMultipleNegativesRankingParams(MultipleNegativesRankingParams):
    type: Literal["SparseMultipleNegativesRankingLoss"]
    scale: float = Field(1.0, gt=0, description="inverse temperature applied to the similarities")
    similarity: SimilarityName = "dot"


@register_loss(SparseMultipleNegativesRankingParams, LOSSES[MultipleNegativesRankingLoss.__name__].contract)
class SparseMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """MultipleNegativesRankingLoss (InfoNCE over in-batch negatives) for sparse models: dot product, scale 1.

    The same options and maths as MultipleNegativesRankingLoss; only the defaults differ, because
    sparse embeddings are compared by their (unnormalised) dot product. Used inside SpladeLoss or CSRLoss.
    """

    model_kinds = ()

    def __init__(self, scale: float = 1.0, similarity: str = "dot", **options) -> None:
        super().__init__(scale=scale, similarity=similarity, **options)

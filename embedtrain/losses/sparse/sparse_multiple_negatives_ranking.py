from typing import Literal

from pydantic import Field

from embedtrain.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss, MultipleNegativesRankingParams
from embedtrain.losses.registry import register_loss
from embedtrain.similarity import SimilarityName


class SparseMultipleNegativesRankingParams(MultipleNegativesRankingParams):
    type: Literal["SparseMultipleNegativesRankingLoss"]
    scale: float = Field(1.0, gt=0, description="inverse temperature applied to the similarities")
    similarity: SimilarityName = "dot"


@register_loss
class SparseMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """MultipleNegativesRankingLoss (InfoNCE over in-batch negatives) for sparse models: dot product, scale 1.

    The same options and maths as MultipleNegativesRankingLoss; only the defaults differ, because
    sparse embeddings are compared by their (unnormalised) dot product. Used inside SpladeLoss or CSRLoss.
    """

    Params = SparseMultipleNegativesRankingParams
    model_kinds = ()
    sparse_inner_loss = True

from typing import Literal

from embedtrain.losses.cached_multiple_negatives_ranking import (
    MINI_BATCH_NUM_TOKENS_FIELD,
    MINI_BATCH_SIZE_FIELD,
    CachedMultipleNegativesRankingLoss,
)
from embedtrain.losses.multiple_negatives_ranking import GATHER_FIELD
from embedtrain.losses.multiple_negatives_symmetric_ranking import SymmetricRankingOptions
from embedtrain.losses.registry import register_loss


class CachedMultipleNegativesSymmetricRankingParams(SymmetricRankingOptions):
    type: Literal["CachedMultipleNegativesSymmetricRankingLoss"]
    mini_batch_size: int = MINI_BATCH_SIZE_FIELD
    mini_batch_num_tokens: int | None = MINI_BATCH_NUM_TOKENS_FIELD
    gather_across_devices: bool = GATHER_FIELD


@register_loss
class CachedMultipleNegativesSymmetricRankingLoss(CachedMultipleNegativesRankingLoss):
    """MultipleNegativesSymmetricRankingLoss with GradCache: same loss and gradients, one mini-batch of activations in memory."""

    Params = CachedMultipleNegativesSymmetricRankingParams

from typing import Literal

from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.cached_multiple_negatives_ranking import (
    MINI_BATCH_NUM_TOKENS_FIELD,
    MINI_BATCH_SIZE_FIELD,
    cached_ranking_loss,
)
from embedtrain.losses.gradcache import GradCacheLoss
from embedtrain.losses.multiple_negatives_symmetric_ranking import SymmetricRankingOptions, symmetric_options
from embedtrain.losses.registry import register_loss


class CachedMultipleNegativesSymmetricRankingParams(SymmetricRankingOptions):
    type: Literal["CachedMultipleNegativesSymmetricRankingLoss"]
    mini_batch_size: int = MINI_BATCH_SIZE_FIELD
    mini_batch_num_tokens: int | None = MINI_BATCH_NUM_TOKENS_FIELD


@register_loss(
    CachedMultipleNegativesSymmetricRankingParams,
    ColumnContract(inputs=("anchor", "positive"), repeated_input="negative", in_batch_negatives=True),
)
class CachedMultipleNegativesSymmetricRankingLoss(GradCacheLoss):
    """MultipleNegativesSymmetricRankingLoss with GradCache: same loss and gradients, one mini-batch of activations in memory."""

    def __init__(self, mini_batch_size: int = 32, mini_batch_num_tokens: int | None = None, **params) -> None:
        super().__init__()
        self.mini_batch_size, self.mini_batch_num_tokens = mini_batch_size, mini_batch_num_tokens
        self.options = symmetric_options(params)

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None, with_backward: bool) -> Tensor:
        return cached_ranking_loss(reps, self.options, self.mini_batch_size, with_backward)

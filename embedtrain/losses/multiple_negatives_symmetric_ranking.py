from typing import ClassVar, Literal

from pydantic import Field

from embedtrain.losses.multiple_negatives_ranking import (
    GATHER_FIELD,
    Direction,
    HardnessMode,
    MultipleNegativesRankingLoss,
    PartitionMode,
)
from embedtrain.losses.registry import LossParams, register_loss
from embedtrain.similarity import SimilarityName


class SymmetricRankingOptions(LossParams):
    """The options shared by MultipleNegativesSymmetricRankingLoss and its cached variant: the ranking settings of
    `ranking_row_losses`, with the directions and partition fixed (class variables, not recipe options)."""

    scale: float = Field(20.0, gt=0, description="inverse temperature applied to the similarities")
    similarity: SimilarityName = "cosine"
    directions: ClassVar[tuple[Direction, ...]] = ("query_to_doc", "doc_to_query")
    partition_mode: ClassVar[PartitionMode] = "per_direction"
    hardness_mode: ClassVar[HardnessMode | None] = None
    hardness_strength: ClassVar[float] = 0.0


class MultipleNegativesSymmetricRankingParams(SymmetricRankingOptions):
    type: Literal["MultipleNegativesSymmetricRankingLoss"]
    gather_across_devices: bool = GATHER_FIELD


@register_loss
class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """InfoNCE in both directions: each anchor picks its positive, and each positive picks its anchor.

    `L = mean_i[ ½(logsumexp_j s*sim(a_i, c_j) + logsumexp_j s*sim(p_i, a_j)) - s*sim(a_i, p_i) ]`:
    MultipleNegativesRankingLoss with directions (query_to_doc, doc_to_query), per_direction.
    """

    Params = MultipleNegativesSymmetricRankingParams

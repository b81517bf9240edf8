from typing import Literal

from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.multiple_negatives_ranking import (
    GATHER_FIELD,
    RankingOptions,
    gather_columns,
    ranking_row_losses,
)
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import SimilarityName


class SymmetricRankingOptions(LossParams):
    scale: float = Field(20.0, gt=0, description="inverse temperature applied to the similarities")
    similarity: SimilarityName = "cosine"


class MultipleNegativesSymmetricRankingParams(SymmetricRankingOptions):
    type: Literal["MultipleNegativesSymmetricRankingLoss"]
    gather_across_devices: bool = GATHER_FIELD


def symmetric_options(params: dict) -> RankingOptions:
    return RankingOptions(type="options", **params, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")


@register_loss(
    MultipleNegativesSymmetricRankingParams,
    ColumnContract(inputs=("anchor", "positive"), repeated_input="negative", in_batch_negatives=True),
)
class MultipleNegativesSymmetricRankingLoss(EmbeddingLoss):
    """InfoNCE in both directions: each anchor picks its positive, and each positive picks its anchor.

    `L = mean_i[ ½(logsumexp_j s*sim(a_i, c_j) + logsumexp_j s*sim(p_i, a_j)) - s*sim(a_i, p_i) ]`:
    MultipleNegativesRankingLoss with directions (query_to_doc, doc_to_query), per_direction.
    """

    def __init__(self, gather_across_devices: bool = False, **params) -> None:
        super().__init__()
        self.gather_across_devices = gather_across_devices
        self.options = symmetric_options(params)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        # Evaluation runs on the main process only: gathering there would wait forever for the other processes.
        queries, docs, rows = gather_columns(embeddings, self.gather_across_devices and self.training)
        return ranking_row_losses(queries, docs, rows, self.options).mean()

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.gradcache import GradCacheLoss, refuse_static_model
from embedtrain.losses.registry import Embedder, LossParams, register_loss
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import cosine_matrix


class MegaBatchMarginParams(LossParams):
    type: Literal["MegaBatchMarginLoss"]
    positive_margin: float = Field(0.8, description="the anchor-positive cosine should reach this")
    negative_margin: float = Field(0.3, description="the hardest in-batch negative cosine should stay below this")
    use_mini_batched_version: bool = Field(True, description="embed the mega-batch in mini-batches (GradCache)")
    mini_batch_size: int = Field(50, gt=0, description="rows embedded (and scored) at once")
    mini_batch_num_tokens: int | None = Field(
        None, gt=0, description="instead of mini_batch_size: as many rows as fit this many non-padding tokens")


@register_loss
class MegaBatchMarginLoss(GradCacheLoss):
    """Margin loss against the hardest negative of a mega-batch: the other positive most similar to the anchor.

    `L = (1/B) sum_i [relu(m+ - cos(a_i, p_i)) + relu(max_{j != i} cos(a_i, p_j) - m-)]` (Wieting & Gimpel, 2018).
    """

    Params = MegaBatchMarginParams
    contract = ColumnContract(inputs=("anchor", "positive"), in_batch_negatives=True)

    def __init__(self, params: MegaBatchMarginParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        if params.use_mini_batched_version:
            refuse_static_model(params, model)

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        if self.params.use_mini_batched_version:
            return self.forward_cached(model, features, labels, self.calculate_loss)
        reps = [[model(column)["sentence_embedding"]] for column in features]
        return self.calculate_loss(reps, labels, with_backward=False)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        return self.calculate_loss([[embedding] for embedding in embeddings], labels, with_backward=False)

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None, with_backward: bool) -> Tensor:
        anchors, positives = torch.cat(reps[0]), torch.cat(reps[1])
        batch_size = len(anchors)
        # Scored in chunks of anchors only when that saves memory (backward per chunk, or no graph at all).
        chunk_size = self.params.mini_batch_size if with_backward or not torch.is_grad_enabled() else batch_size
        total = anchors.new_zeros(())
        for begin in range(0, batch_size, chunk_size):
            end = min(begin + chunk_size, batch_size)
            rows = torch.arange(end - begin, device=anchors.device)
            scores = cosine_matrix(anchors[begin:end], positives)
            positive_scores = scores[rows, rows + begin]
            hardest_negative = scores.index_put((rows, rows + begin), torch.tensor(-torch.inf)).max(dim=1).values
            chunk = (F.relu(self.params.positive_margin - positive_scores)
                     + F.relu(hardest_negative - self.params.negative_margin)).sum() / batch_size
            if with_backward:
                chunk.backward()
                chunk = chunk.detach()
            total = total + chunk
        return total

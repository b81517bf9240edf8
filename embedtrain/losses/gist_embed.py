from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.distributed import gather_with_grad
from embedtrain.losses.frozen_encoder import FrozenEncoder
from embedtrain.losses.multiple_negatives_ranking import GATHER_FIELD
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams, register_loss
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import cosine_matrix

GIST_CONTRACT = ColumnContract(inputs=("anchor", "positive"), repeated_input="negative", in_batch_negatives=True)


class GuidedOptions(LossParams):
    guide: str = Field(description="the guide model (hub id or local directory) that filters false in-batch negatives")
    temperature: float = Field(0.01, gt=0, description="softmax temperature of the cosine similarities")
    margin_strategy: Literal["absolute", "relative"] = Field(
        "absolute", description="candidates whose guide similarity exceeds the positive's minus margin (absolute) or "
                                "times (1 - margin) (relative) are masked")
    margin: float = Field(0.0, description="how far below the positive's guide similarity a candidate is kept")
    contrast_anchors: bool = Field(True, description="other anchors are negatives too")
    contrast_positives: bool = Field(True, description="each positive is contrasted with the other positives too")


class GISTEmbedParams(GuidedOptions):
    type: Literal["GISTEmbedLoss"]
    gather_across_devices: bool = GATHER_FIELD


class GuidedScorer:
    """The guided InfoNCE of GISTEmbed over given embeddings (of the model and of the guide).

    For anchor i, with candidates C = [positives, other anchors, positives (from positive i), negatives...],
    `L_i = -log softmax(cos(a_i, C) / τ)[p_i]`, where every candidate c ≠ p_i whose guide similarity
    to the anchor (or positive) exceeds the positive's guide similarity minus the margin is masked
    out as a probable false negative (Solatorio, 2024).
    """

    def __init__(self, options: GuidedOptions) -> None:
        self.options = options

    def _mask(self, guide_scores: Tensor, scores: Tensor, threshold: Tensor, keep: Tensor | None = None) -> Tensor:
        if self.options.margin_strategy == "absolute":
            masked = guide_scores > threshold - self.options.margin
        else:
            masked = guide_scores > threshold - threshold.abs() * self.options.margin
        if keep is not None:
            masked &= ~keep
        return scores.masked_fill(masked, -torch.inf)

    def chunk_loss(self, anchors: Tensor, candidates: list[Tensor], guide_anchors: Tensor, guide_candidates: list[Tensor],
                   begin: int, end: int, offset: int) -> Tensor:
        """Sum over anchors [begin, end) of their loss; candidates' rows [offset, offset + B) are this process's."""
        rows = torch.arange(end - begin, device=anchors.device)
        targets = offset + begin + rows  # the positive of each anchor, among all (gathered) positives
        guide_positive = cosine_matrix(guide_anchors[begin:end], guide_candidates[0])
        threshold = guide_positive[rows, targets].view(-1, 1)
        is_positive = torch.zeros_like(guide_positive, dtype=torch.bool)
        is_positive[rows, targets] = True
        scores = [self._mask(guide_positive, cosine_matrix(anchors[begin:end], candidates[0]), threshold, is_positive)]
        if self.options.contrast_anchors:
            scores.append(self._mask(cosine_matrix(guide_anchors[begin:end], guide_anchors),
                                     cosine_matrix(anchors[begin:end], anchors), threshold))
        if self.options.contrast_positives:
            own = slice(offset + begin, offset + end)
            scores.append(self._mask(cosine_matrix(guide_candidates[0][own], guide_candidates[0]),
                                     cosine_matrix(candidates[0][own], candidates[0]), threshold))
        for negatives, guide_negatives in zip(candidates[1:], guide_candidates[1:]):
            scores.append(self._mask(cosine_matrix(guide_anchors[begin:end], guide_negatives),
                                     cosine_matrix(anchors[begin:end], negatives), threshold))
        return F.cross_entropy(torch.cat(scores, dim=1) / self.options.temperature, targets, reduction="sum")


class GuidedLoss(EmbeddingLoss):
    """What GISTEmbedLoss and its cached variant share: the guide model (frozen) and the scorer it guides."""

    contract = GIST_CONTRACT

    def __init__(self, params: GuidedOptions, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        self.guide = FrozenEncoder.load(params.guide, model, "guide")
        self.scorer = GuidedScorer(params)


@register_loss
class GISTEmbedLoss(GuidedLoss):
    """MultipleNegativesRankingLoss whose in-batch negatives are filtered by a guide model: candidates the guide
    finds as similar to the anchor as its positive are masked out as probable false negatives (GISTEmbed).

    See `GuidedScorer` for the formula. The guide is frozen, kept in evaluation mode and not saved.
    """

    Params = GISTEmbedParams

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        guide_embeddings = [self.guide.embed(column) for column in features]
        embeddings = [model(column)["sentence_embedding"] for column in features]
        # Evaluation runs on the main process alone: no gathering there.
        return self.loss_from_embeddings(embeddings, guide_embeddings, self.params.gather_across_devices and self.training)

    def loss_from_embeddings(self, embeddings: list[Tensor], guide_embeddings: list[Tensor], gather: bool) -> Tensor:
        """The mean loss of this process's anchors; with `gather`, against the positives and negatives of every
        process (anchors are not gathered, as in the reference: contrast_anchors uses this process's anchors)."""
        anchors, candidates = embeddings[0], embeddings[1:]
        guide_anchors, guide_candidates = guide_embeddings[0], guide_embeddings[1:]
        offset = 0
        if gather:
            offset = gather_with_grad(candidates[0])[1]
            candidates = [gather_with_grad(column)[0] for column in candidates]
            guide_candidates = [gather_with_grad(column)[0] for column in guide_candidates]
        batch_size = anchors.size(0)
        return self.scorer.chunk_loss(anchors, candidates, guide_anchors, guide_candidates, 0, batch_size, offset) / batch_size

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from embedtrain.losses.registry import EmbeddingLoss, LossParams, build_loss, register_loss
from embedtrain.losses.sparse.inner_loss import SparseLossConfig
from embedtrain.losses.sparse.regularizer import WarmupSchedule, flops, warmup_weight
from embedtrain.models.embedder import SentenceEmbedder

THRESHOLD_DESCRIPTION = "embeddings with at most this many non-zero dimensions are not regularised"


class SpladeOptions(LossParams):
    """The options shared by SpladeLoss and its cached (GradCache) variant."""

    loss: SparseLossConfig = Field(description="the sparse loss to regularise, e.g. {type: SparseMultipleNegativesRankingLoss}")
    document_regularizer_weight: float = Field(
        ge=0, description="lambda_d: weight of the FLOPS regulariser of the documents (every column after the first), "
                          "e.g. 3e-5 (SPLADE) or 3e-4 (inference-free SPLADE)")
    query_regularizer_weight: float | None = Field(
        None, ge=0, description="lambda_q: weight of the FLOPS regulariser of the queries (the first column), e.g. 5e-5; "
                                "omit (or 0) for inference-free SPLADE, whose queries are not encoded by the transformer")
    document_regularizer_threshold: int | None = Field(None, ge=0, description=f"documents: {THRESHOLD_DESCRIPTION}")
    query_regularizer_threshold: int | None = Field(None, ge=0, description=f"queries: {THRESHOLD_DESCRIPTION}")
    use_document_regularizer_only: bool = Field(
        False, description="every column is a document (symmetric data): one regulariser, with document_regularizer_weight")
    regularizer_warmup_ratio: float = Field(
        1 / 3, gt=0, le=1, description="the regulariser weights grow from 0 to their value over this fraction of the steps")
    regularizer_warmup_schedule: WarmupSchedule = Field("quadratic", description="how they grow: quadratic or linear")

    @model_validator(mode="after")
    def _query_options_apply(self) -> "SpladeOptions":
        if self.use_document_regularizer_only:
            given = [name for name in ("query_regularizer_weight", "query_regularizer_threshold") if getattr(self, name) is not None]
            if given:
                raise ValueError(f"{' and '.join(given)} have no effect with use_document_regularizer_only (every column is "
                                 f"a document): remove them")
        elif self.query_regularizer_threshold is not None and self.query_regularizer_weight is None:
            raise ValueError("query_regularizer_threshold has no effect without query_regularizer_weight")
        return self


class SpladeParams(SpladeOptions):
    type: Literal["SpladeLoss"]


@register_loss
class SpladeLoss(EmbeddingLoss):
    """Trains a SPLADE model: a sparse loss plus FLOPS regularisers that keep query and document embeddings sparse.

    `L = L_inner + lambda_d·FLOPS(documents) [+ lambda_q·FLOPS(queries)]` (Formal et al., 2021-2022), with
    `FLOPS(E) = sum_v (mean_i E_iv)²`; the queries are the first column, the documents the others. Both
    weights warm up from 0 over the first third of training (quadratically), as the reference's trainer
    always does. Returns the terms `base_loss`, `document_regularizer_loss`, `query_regularizer_loss`.
    """

    Params = SpladeParams
    contract = None
    model_kinds = ("sparse",)

    def __init__(self, params: SpladeOptions, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        self.loss = build_loss(params.loss, model)
        # The weights in use (the parameters hold their targets). Until the trainer reports progress they are the
        # targets: a loss used outside training (or before the first step) applies its regularisers in full, as the
        # reference's loss does.
        self.document_regularizer_weight = params.document_regularizer_weight
        self.query_regularizer_weight = params.query_regularizer_weight

    def set_training_progress(self, step: int, total_steps: int) -> None:
        schedule = (step, total_steps, self.params.regularizer_warmup_ratio, self.params.regularizer_warmup_schedule)
        self.document_regularizer_weight = warmup_weight(self.params.document_regularizer_weight, *schedule)
        if self.params.query_regularizer_weight is not None:
            self.query_regularizer_weight = warmup_weight(self.params.query_regularizer_weight, *schedule)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> dict[str, Tensor]:
        terms = {"base_loss": self.loss.compute_loss_from_embeddings(embeddings, labels)}
        documents = embeddings if self.params.use_document_regularizer_only else embeddings[1:]
        terms["document_regularizer_loss"] = (
            flops(torch.cat(documents), self.params.document_regularizer_threshold) * self.document_regularizer_weight)
        if self.query_regularizer_weight is not None:
            terms["query_regularizer_loss"] = (
                flops(embeddings[0], self.params.query_regularizer_threshold) * self.query_regularizer_weight)
        return terms

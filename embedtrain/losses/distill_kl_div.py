from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import DataError
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import PAIRWISE, SimilarityName


class DistillKLDivParams(LossParams):
    type: Literal["DistillKLDivLoss"]
    similarity: SimilarityName = "dot"
    temperature: float = Field(1.0, gt=0, description="softmax temperature of student and teacher scores")
    student_temperature: float | None = Field(None, gt=0, description="the student's own temperature (default: temperature)")
    teacher_temperature: float | None = Field(None, gt=0, description="the teacher's own temperature (default: temperature)")


@register_loss
class DistillKLDivLoss(EmbeddingLoss):
    """KL divergence from the teacher's to the student's softmax over each query's candidates (positive and negatives).

    `L = T_s² · mean_i KL(softmax(y_i / T_t) || softmax(s_i / T_s))` with `s_i = [s(q_i, p_i), s(q_i, n_i1), ...]`
    and `y_i` the teacher's raw scores for the same candidates (one per candidate column).
    """

    Params = DistillKLDivParams
    contract = ColumnContract(inputs=("query", "positive"), repeated_input="negative", label="scores")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        queries, candidates = embeddings[0], embeddings[1:]
        if len(candidates) < 2 or labels.shape != (queries.size(0), len(candidates)):
            raise DataError(f"DistillKLDivLoss needs at least one negative column and one teacher score per candidate "
                            f"column ({len(candidates)}), but got {len(candidates) - 1} negative column(s) and labels "
                            f"of shape {tuple(labels.shape)}")
        student_temperature = self.params.student_temperature or self.params.temperature
        teacher_temperature = self.params.teacher_temperature or self.params.temperature
        student = torch.stack([PAIRWISE[self.params.similarity](queries, candidate) for candidate in candidates], dim=1)
        student_log_probs = torch.log_softmax(student / student_temperature, dim=1)
        teacher_probs = torch.softmax(labels.detach() / teacher_temperature, dim=1)
        return F.kl_div(student_log_probs, teacher_probs, reduction="batchmean") * student_temperature ** 2

"""The SPLADE sparsity regulariser (FLOPS) and the warm-up schedule of its weight."""

from typing import Literal

import torch
from torch import Tensor

WarmupSchedule = Literal["quadratic", "linear"]


def flops(embeddings: Tensor, threshold: int | None = None) -> Tensor:
    """FLOPS regulariser of a batch of sparse embeddings (batch, vocab): `sum_v (mean_i e_iv)²` (Paria et al., 2020).

    It approximates the cost of scoring against these embeddings in an inverted index, pushing each
    vocabulary dimension towards zero across the batch. With `threshold`, rows with at most that many
    non-zero dimensions count as zero: already-sparse embeddings are not pushed further (L0 masking,
    Geng et al., 2025). The mean still runs over the whole batch.
    """
    if threshold is not None:
        active = (embeddings != 0).sum(dim=1)
        embeddings = embeddings * (active > threshold).to(embeddings.dtype).unsqueeze(1)
    return torch.sum(torch.mean(embeddings, dim=0) ** 2)


def warmup_weight(target: float, step: int, total_steps: int, warmup_ratio: float, schedule: WarmupSchedule) -> float:
    """The regulariser weight after `step` of `total_steps` optimizer steps: it grows from 0 to `target` over the first
    `warmup_ratio` of training (as `(step / warmup)²` or linearly), then stays at `target`.

    Strong sparsity pressure from the first step collapses a SPLADE model to empty embeddings; the
    reference's trainer therefore always applies this warm-up (its SpladeRegularizerWeightSchedulerCallback,
    same formula, warm-up steps `int(total_steps * warmup_ratio)`, at least 1).
    """
    warmup_steps = max(int(total_steps * warmup_ratio), 1)
    if step >= warmup_steps:
        return target
    ratio = step / warmup_steps
    return target * (ratio ** 2 if schedule == "quadratic" else ratio)

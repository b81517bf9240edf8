from functools import partial
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from embedtrain.errors import TrainingError
from embedtrain.losses.cross_encoder.multiple_negatives_ranking import (
    RANKING_CONTRACT,
    CrossEncoderRankingOptions,
    candidate_columns,
    ranking_loss,
)
from embedtrain.losses.cross_encoder.scoring import column_pairs
from embedtrain.losses.distributed import is_distributed
from embedtrain.losses.gradcache import ForwardState
from embedtrain.losses.registry import CrossEncoderInputs, CrossEncoderLoss, PairScorer, register_loss


class CrossEncoderCachedMultipleNegativesRankingParams(CrossEncoderRankingOptions):
    type: Literal["CrossEncoderCachedMultipleNegativesRankingLoss"]
    mini_batch_size: int = Field(32, gt=0, description="pairs scored at once (bounds activation memory)")


@register_loss
class CrossEncoderCachedMultipleNegativesRankingLoss(CrossEncoderLoss):
    """CrossEncoderMultipleNegativesRankingLoss with GradCache: the same loss and gradients, with the activation
    memory of `mini_batch_size` pairs however many negatives each anchor has.

    The pairs are scored `mini_batch_size` at a time without a graph (remembering each pass's RNG and autocast
    state), the loss is backpropagated to the scores, and the returned loss's backward re-scores each mini-batch
    with a graph and backpropagates its cached score gradients (see `embedtrain.losses.gradcache`). Costs one
    extra forward pass per pair; trains in one process. The reference's cached cross-encoder MNRL.
    """

    Params = CrossEncoderCachedMultipleNegativesRankingParams
    contract = RANKING_CONTRACT

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: None) -> Tensor:
        columns = candidate_columns(inputs, self.params.num_negatives)
        pairs = column_pairs(inputs[0], columns)  # mini-batches cut across columns, as the reference cuts them
        size = self.params.mini_batch_size
        chunks = [pairs[begin:begin + size] for begin in range(0, len(pairs), size)]

        def loss_of(scores: list[Tensor]) -> Tensor:
            return ranking_loss(torch.cat(scores).view(len(columns), -1).T, self.params)

        if not torch.is_grad_enabled():
            return loss_of([model.score_pairs(chunk).view(-1) for chunk in chunks])
        if is_distributed():
            raise TrainingError(f"{type(self).__name__} runs its backward pass outside DDP's view and cannot train "
                                f"with several processes; use CrossEncoderMultipleNegativesRankingLoss instead")
        parameter = next(model.parameters())  # where the model runs: whose RNG its dropout draws from
        states, scores = [], []
        for chunk in chunks:
            states.append(ForwardState.capture_on([parameter], parameter.device.type))
            with torch.no_grad():
                scores.append(model.score_pairs(chunk).view(-1).requires_grad_())
        loss = loss_of(scores)
        loss.backward()
        loss = loss.detach().requires_grad_()
        loss.register_hook(partial(_replay_backward, model=model, chunks=chunks, states=states,
                                   cached_grads=[score.grad for score in scores]))
        return loss


def _replay_backward(grad_output: Tensor, *, model: PairScorer, chunks: list[list[tuple[str, str]]],
                     states: list[ForwardState], cached_grads: list[Tensor]) -> None:
    """Re-score each mini-batch with its forward state replayed; backpropagate `<scores, dL/d scores> * dL_out`."""
    with torch.enable_grad():
        for chunk, state, grad in zip(chunks, states, cached_grads):
            with state.replayed():
                scores = model.score_pairs(chunk).view(-1)
            dtype = torch.promote_types(scores.dtype, torch.float32)  # half precision summed in float32, float64 kept
            torch.dot(scores.to(dtype), grad.to(dtype)).mul(grad_output).backward()

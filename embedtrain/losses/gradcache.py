"""GradCache: a loss over a large batch with the activation memory of one mini-batch, same value and gradients.

Three stages (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"):

1. embed every mini-batch of every column without building a graph, remembering the RNG state
   before each (so dropout can be replayed) and the autocast setting;
2. compute the loss on those embeddings and backpropagate to them, caching dL/d(embedding);
3. when the returned loss is backpropagated, re-embed each mini-batch with a graph under its
   remembered RNG state and autocast setting, and backpropagate `<embedding, cached gradient>` into the model.

Stage 3 runs in a hook on the returned (detached) loss, so the trainer's ordinary
`backward(loss)` drives it. Because the loss is detached from the model, DDP cannot see which
parameters it used, and the replayed passes would mark parameters ready several times: with
several processes the trainer runs these losses outside DDP's synchronisation and averages the
gradients itself (engine.gradient_sync).
"""

import bisect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor
from torch.utils.checkpoint import get_device_states, set_device_states

from embedtrain.errors import RecipeError, TrainingError
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.modules import Transformer

CalculateLoss = Callable[[list[list[Tensor]], Tensor | None, bool], Tensor]
"""(embeddings per column per mini-batch, labels, with_backward) -> loss; with_backward: backpropagate to the
embeddings (chunk by chunk, to bound the memory of the score matrices) and return the detached loss."""


@dataclass(frozen=True)
class ForwardState:
    """What a mini-batch's forward pass depends on besides its inputs: the CPU and accelerator RNG states
    (dropout) and the autocast setting (mixed precision), which the backward pass, run outside the
    trainer's autocast context, must restore."""

    cpu: Tensor
    devices: list[int]
    device_states: list[Tensor]
    device_type: str
    autocast: bool
    autocast_dtype: torch.dtype

    @classmethod
    def capture(cls, features: dict[str, Tensor]) -> "ForwardState":
        return cls.capture_on(list(features.values()), features["input_ids"].device.type)

    @classmethod
    def capture_on(cls, tensors: list, device_type: str) -> "ForwardState":
        """The state now, for a forward pass on the devices that `tensors` (non-tensors are skipped) live on."""
        devices, states = get_device_states(*tensors)
        return cls(torch.get_rng_state(), devices, states, device_type, torch.is_autocast_enabled(device_type),
                   torch.get_autocast_dtype(device_type))

    @contextmanager
    def replayed(self) -> Iterator[None]:
        """Run with these RNG states and autocast setting; the RNG outside is left as it was."""
        with torch.random.fork_rng(devices=self.devices), \
                torch.autocast(self.device_type, dtype=self.autocast_dtype, enabled=self.autocast):
            torch.set_rng_state(self.cpu)
            set_device_states(self.devices, self.device_states)
            yield


def minibatch_ranges(features: dict[str, Tensor], mini_batch_size: int, mini_batch_num_tokens: int | None) -> list[tuple[int, int]]:
    """[begin, end) row ranges: `mini_batch_size` rows each, or as many rows as fit `mini_batch_num_tokens`
    non-padding tokens (at least one row per range)."""
    batch_size = features["input_ids"].size(0)
    if mini_batch_num_tokens is None:
        return [(begin, min(begin + mini_batch_size, batch_size)) for begin in range(0, batch_size, mini_batch_size)]
    cumulative = features["attention_mask"].sum(dim=1).cumsum(dim=0).tolist()
    ranges, begin = [], 0
    while begin < batch_size:
        before = cumulative[begin - 1] if begin else 0
        end = max(bisect.bisect_right(cumulative, before + mini_batch_num_tokens), begin + 1)
        ranges.append((begin, end))
        begin = end
    return ranges


def slice_rows(features: dict[str, Tensor], begin: int, end: int) -> dict[str, Tensor]:
    """Rows [begin, end) of tokenized features, cut to the longest of those rows (less padding to compute).

    Values that are not tensors describe the whole column (a Router's `task` route, a `modality`) and are kept.
    """
    mask = features["attention_mask"]
    width = mask.size(1)
    used = mask[begin:end].bool().any(dim=0).nonzero()
    keep = int(used.max()) + 1 if len(used) else width
    return {key: _slice_value(value, begin, end, width, keep) for key, value in features.items()}


def _slice_value(value, begin: int, end: int, width: int, keep: int):
    if not isinstance(value, Tensor):
        return value
    return value[begin:end, :keep] if value.ndim >= 2 and value.size(1) == width else value[begin:end]


class GradCacheLoss(EmbeddingLoss):
    """Base of the cached losses: their parameters set `mini_batch_size` and `mini_batch_num_tokens`; subclasses
    define `calculate_loss`."""

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None, with_backward: bool) -> Tensor:
        raise NotImplementedError

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        return self.forward_cached(model, features, labels, self.calculate_loss)

    def forward_cached(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None,
                       calculate: CalculateLoss) -> Tensor:
        """The loss by `calculate` over mini-batched embeddings; its backward runs stage 3 (see the module docstring)."""
        ranges = [minibatch_ranges(column, self.params.mini_batch_size, self.params.mini_batch_num_tokens)
                  for column in features]
        if not torch.is_grad_enabled():
            reps = [[model(slice_rows(column, *span))["sentence_embedding"] for span in spans]
                    for column, spans in zip(features, ranges)]
            return calculate(reps, labels, False)
        reps, states = [], []
        for column, spans in zip(features, ranges):
            column_reps, column_states = [], []
            for begin, end in spans:
                piece = slice_rows(column, begin, end)
                column_states.append(ForwardState.capture(piece))
                with torch.no_grad():
                    column_reps.append(model(piece)["sentence_embedding"].detach().requires_grad_())
            reps.append(column_reps)
            states.append(column_states)
        loss = calculate(reps, labels, True).detach().requires_grad_()
        cached_grads = [[rep.grad for rep in column] for column in reps]
        unused = [index for index, column in enumerate(cached_grads) if any(grad is None for grad in column)]
        if unused:
            raise TrainingError(f"{type(self).__name__}: input columns {unused} got no gradient from the loss; "
                                f"remove them from the dataset")
        loss.register_hook(partial(_replay_backward, model=model, features=features, ranges=ranges, states=states,
                                   cached_grads=cached_grads))
        return loss


def refuse_static_model(params: LossParams, model: SentenceEmbedder) -> None:
    """A dense cached loss embeds mini-batches of padded rows: refuse a model without a transformer."""
    if not isinstance(model.input_module, Transformer):
        raise RecipeError(f"{params.type} embeds mini-batches of padded rows, which a StaticEmbedding model's flat "
                          f"inputs cannot be split into; use the uncached loss")


def _replay_backward(grad_output: Tensor, *, model: Embedder, features: list[dict[str, Tensor]],
                     ranges: list[list[tuple[int, int]]], states: list[list[ForwardState]],
                     cached_grads: list[list[Tensor]]) -> None:
    """Stage 3: re-embed each mini-batch with its forward state replayed and backpropagate `<embedding, dL/d embedding> * dL_out`."""
    with torch.enable_grad():
        for column, spans, column_states, column_grads in zip(features, ranges, states, cached_grads):
            for (begin, end), state, grad in zip(spans, column_states, column_grads):
                with state.replayed():
                    reps = model(slice_rows(column, begin, end))["sentence_embedding"]
                surrogate = torch.dot(reps.flatten().float(), grad.flatten().float()) * grad_output
                surrogate.backward()

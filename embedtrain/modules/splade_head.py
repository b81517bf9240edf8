"""The SPLADE head without the (tokens x vocabulary) logits: the MLM decoder, the activation and the pooling fused.

SPLADE turns each token's MLM logits (one per vocabulary entry, 30,522 for BERT) into weights
`log1p(relu(logit))` and pools them per text (max or sum). Computed naively, every step materialises
those logits for every real token, in the forward and again in the backward: on a small encoder such as
SPLADE-tiny that (tokens x vocabulary) tensor costs more than the encoder itself, mostly in allocating and
page-faulting gigabytes of fresh memory per step.

`splade_pool` computes the same pooled vectors (and gradients) one vocabulary slice at a time, so only a
(tokens x slice) block of logits ever exists, and keeps for the backward only what it needs, of size
(texts x vocabulary):
- max pooling: the pooled weights and, per text and vocabulary entry, the token that won the max. The
  gradient reaches that token alone, so the backward never recomputes the logits: it gathers the winners'
  hidden states (texts x vocabulary x hidden operations instead of tokens x vocabulary x hidden).
- sum pooling: every token contributes, so the backward recomputes each slice's logits.
Both activations' derivatives are read off the pooled weight (max) or the recomputed logit (sum).

A tie for the max between two tokens of one text (the same positive float twice) sends the whole gradient to
the later token, where autograd's `amax` would split it: exact ties of contextual logits do not occur in
practice, and at 0 (no positive logit) the gradient is 0 either way.
"""

import torch
from torch import Tensor

TOKENS_TIMES_SLICE = 1 << 22
"""Elements of one block of logits (16 MiB in float32): a vocabulary slice is as wide as this allows."""


def splade_pool(hidden: Tensor, weight: Tensor, bias: Tensor | None, rows: Tensor, num_texts: int,
                strategy: str, activation: str) -> Tensor:
    """Pooled SPLADE weights (num_texts, vocabulary) of the tokens' decoder inputs `hidden` (tokens, hidden).

    `weight` (vocabulary, hidden) and `bias` are the MLM decoder's; `rows[t]` is the text of token t.
    `strategy` max or sum; `activation` relu (`log1p(relu(x))`) or log1p_relu (a second log1p).
    """
    return _SpladePool.apply(hidden, weight, bias, rows, num_texts, strategy, activation)


def _slices(num_tokens: int, vocabulary: int) -> list[slice]:
    width = max(1, min(vocabulary, TOKENS_TIMES_SLICE // max(num_tokens, 1)))
    return [slice(start, min(start + width, vocabulary)) for start in range(0, vocabulary, width)]


def _logits(hidden: Tensor, weight: Tensor, bias: Tensor | None, columns: slice) -> Tensor:
    logits = hidden @ weight[columns].t()
    return logits + bias[columns] if bias is not None else logits


def _activate(logits: Tensor, activation: str) -> Tensor:
    weights = torch.log1p(torch.relu(logits))
    return torch.log1p(weights) if activation == "log1p_relu" else weights


def _derivative_from_logits(logits: Tensor, activation: str) -> Tensor:
    """d weight / d logit: 1 / (1 + x) for x > 0 (and 0 elsewhere); log1p_relu multiplies 1 / (1 + log1p(x))."""
    positive = torch.relu(logits)
    derivative = torch.where(logits > 0, 1 / (1 + positive), torch.zeros_like(logits))
    return derivative / (1 + torch.log1p(positive)) if activation == "log1p_relu" else derivative


def _derivative_from_weights(weights: Tensor, activation: str) -> Tensor:
    """The same derivative, from the activated weight w of a positive logit: w = log1p(x) gives 1 / (1 + x) =
    exp(-w); log1p_relu, w = log1p(u) with u = log1p(x), gives exp(-w) * exp(-u). Weight 0 -> 0."""
    if activation == "log1p_relu":
        inner = torch.expm1(weights)
        derivative = torch.exp(-weights - inner)
    else:
        derivative = torch.exp(-weights)
    return torch.where(weights > 0, derivative, torch.zeros_like(weights))


class _SpladePool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, rows, num_texts, strategy, activation):
        vocabulary = weight.size(0)
        pooled = hidden.new_zeros(num_texts, vocabulary)
        winners = torch.full((num_texts, vocabulary), -1, dtype=torch.long, device=hidden.device) if strategy == "max" else None
        token_ids = torch.arange(hidden.size(0), device=hidden.device).unsqueeze(1)
        for columns in _slices(hidden.size(0), vocabulary):
            # Under autocast the logits come out in half precision; the pooled vectors keep the hidden states'.
            weights = _activate(_logits(hidden, weight, bias, columns), activation).to(pooled.dtype)
            if strategy == "sum":
                pooled[:, columns].index_add_(0, rows, weights)
                continue
            index = rows.unsqueeze(1).expand_as(weights)
            # Padding (and texts without a positive logit) pool to 0, as in the padded computation.
            best = pooled[:, columns].scatter_reduce(0, index, weights, "amax")
            pooled[:, columns] = best
            won = (weights == best.gather(0, index)) & (weights > 0)
            winners[:, columns] = winners[:, columns].scatter_reduce(
                0, index, torch.where(won, token_ids, -1), "amax")
        ctx.strategy, ctx.activation = strategy, activation
        ctx.has_bias = bias is not None
        ctx.save_for_backward(hidden, weight, bias if bias is not None else hidden.new_empty(0), rows,
                              pooled if strategy == "max" else hidden.new_empty(0),
                              winners if winners is not None else rows.new_empty(0))
        return pooled

    @staticmethod
    def backward(ctx, grad_pooled):
        hidden, weight, bias, rows, pooled, winners = ctx.saved_tensors
        bias = bias if ctx.has_bias else None
        grad_hidden = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        grad_bias = torch.zeros_like(bias) if bias is not None and ctx.needs_input_grad[2] else None
        grad_pooled = grad_pooled.contiguous()
        for columns in _slices(hidden.size(0), weight.size(0)):
            if ctx.strategy == "max":
                _max_backward(columns, hidden, weight, pooled, winners, grad_pooled, ctx.activation,
                              grad_hidden, grad_weight, grad_bias)
                continue
            grad_logits = (grad_pooled[:, columns].index_select(0, rows)
                           * _derivative_from_logits(_logits(hidden, weight, bias, columns), ctx.activation))
            if grad_hidden is not None:
                grad_hidden += grad_logits @ weight[columns]
            if grad_weight is not None:
                grad_weight[columns] = grad_logits.t() @ hidden
            if grad_bias is not None:
                grad_bias[columns] = grad_logits.sum(0)
        return grad_hidden, grad_weight, grad_bias, None, None, None, None


def _max_backward(columns: slice, hidden: Tensor, weight: Tensor, pooled: Tensor, winners: Tensor,
                  grad_pooled: Tensor, activation: str, grad_hidden: Tensor | None, grad_weight: Tensor | None,
                  grad_bias: Tensor | None) -> None:
    """Max pooling's gradient for one vocabulary slice: only each (text, entry)'s winning token's logit gets one."""
    won = winners[:, columns] >= 0
    texts, entries = won.nonzero(as_tuple=True)  # entries: offsets within the slice
    tokens = winners[:, columns][texts, entries]
    grad_logit = grad_pooled[:, columns][texts, entries] * _derivative_from_weights(pooled[:, columns][texts, entries], activation)
    vocabulary_ids = entries + columns.start
    if grad_hidden is not None:
        grad_hidden.index_add_(0, tokens, grad_logit.unsqueeze(1) * weight[vocabulary_ids])
    if grad_weight is not None:
        grad_weight.index_add_(0, vocabulary_ids, grad_logit.unsqueeze(1) * hidden[tokens])
    if grad_bias is not None:
        grad_bias.index_add_(0, vocabulary_ids, grad_logit)

"""The SPLADE head without the (tokens x vocabulary) logits: the MLM decoder, the activation and the pooling fused.

SPLADE turns each token's MLM logits (one per vocabulary entry, 30,522 for BERT) into weights
`log1p(relu(logit))` and pools them per text (max or sum). Computed naively, every step materialises
those logits for every real token, in the forward and again in the backward: on a small encoder such as
SPLADE-tiny that (tokens x vocabulary) tensor costs more than the encoder itself, mostly in allocating and
page-faulting gigabytes of fresh memory per step.

`splade_pool` computes the same pooled vectors and gradients one vocabulary slice at a time, so only a
(tokens x slice) block of logits exists at once, and keeps for the backward nothing of size tokens x
vocabulary:
- max pooling: the activation is monotonic, so the pooled weight is the activation of each text's largest
  logit, a segment max over the raw logits. The gradient reaches only the token that won that max, and only
  where the weight is positive (a few hundred entries per text): the backward recomputes just those
  entries' logits for their text's tokens to find the winner, then adds its gradient.
- sum pooling: every token contributes, so the backward recomputes each slice's logits.

Ties: when two tokens of a text share the largest positive logit, the gradient goes to the first, where
autograd's max would split it; exact ties of contextual logits do not occur in practice.
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
    if rows.numel() > 1 and not bool((rows[1:] >= rows[:-1]).all()):
        # Each text's tokens must be one segment; a stable sort keeps their order (and so which token wins a tie).
        order = torch.argsort(rows, stable=True)
        hidden, rows = hidden.index_select(0, order), rows.index_select(0, order)
    lengths = torch.bincount(rows, minlength=num_texts)
    return _SpladePool.apply(hidden, weight, bias, lengths, strategy, activation)


def _slices(num_tokens: int, vocabulary: int) -> list[slice]:
    width = max(1, min(vocabulary, TOKENS_TIMES_SLICE // max(num_tokens, 1)))
    return [slice(start, min(start + width, vocabulary)) for start in range(0, vocabulary, width)]


def _with_bias(hidden: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor]:
    """`hidden` and `weight` with the bias as one more input dimension (a column of ones, and the bias), so the
    matmul adds it: adding it to each (tokens x slice) block of logits would be one more pass over all of them."""
    if bias is None:
        return hidden, weight
    return (torch.cat([hidden, hidden.new_ones(hidden.size(0), 1)], dim=1),
            torch.cat([weight, bias.unsqueeze(1).to(weight.dtype)], dim=1))


def _activate(logits: Tensor, activation: str) -> Tensor:
    weights = torch.log1p(torch.relu(logits))
    return torch.log1p(weights) if activation == "log1p_relu" else weights


def _derivative(logits: Tensor, activation: str) -> Tensor:
    """d weight / d logit: 1 / (1 + x) for x > 0 (and 0 elsewhere); log1p_relu multiplies 1 / (1 + log1p(x))."""
    positive = torch.relu(logits)
    derivative = torch.where(logits > 0, 1 / (1 + positive), torch.zeros_like(logits))
    return derivative / (1 + torch.log1p(positive)) if activation == "log1p_relu" else derivative


class _SpladePool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, lengths, strategy, activation):
        # Under autocast the logits come out in half precision; the pooled vectors keep the hidden states' dtype.
        pooled = hidden.new_empty(lengths.numel(), weight.size(0))
        inputs, projection = _with_bias(hidden, weight, bias)
        for columns in _slices(hidden.size(0), weight.size(0)):
            logits = (inputs @ projection[columns].t()).to(pooled.dtype)
            if strategy == "max":  # 0 for a text without a positive logit (or without tokens): its weights are 0
                pooled[:, columns] = torch.segment_reduce(logits, "max", lengths=lengths, axis=0, unsafe=True, initial=0)
            else:
                pooled[:, columns] = torch.segment_reduce(_activate(logits, activation), "sum", lengths=lengths,
                                                          axis=0, unsafe=True, initial=0)
        if strategy == "max":
            largest_logits, pooled = pooled, _activate(pooled, activation)
        ctx.strategy, ctx.activation, ctx.has_bias = strategy, activation, bias is not None
        ctx.save_for_backward(hidden, weight, bias if bias is not None else hidden.new_empty(0), lengths,
                              largest_logits if strategy == "max" else hidden.new_empty(0))
        return pooled

    @staticmethod
    def backward(ctx, grad_pooled):
        hidden, weight, bias, lengths, largest_logits = ctx.saved_tensors
        bias = bias if ctx.has_bias else None
        grad_hidden = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        grad_bias = torch.zeros_like(bias) if bias is not None and ctx.needs_input_grad[2] else None
        if ctx.strategy == "max":
            texts, entries = (largest_logits > 0).nonzero(as_tuple=True)
            tokens = _winning_tokens(hidden, weight, bias, lengths, texts, entries)
            grad_logit = grad_pooled[texts, entries] * _derivative(largest_logits[texts, entries], ctx.activation)
            _add_gradients(grad_logit, tokens, entries, hidden, weight, grad_hidden, grad_weight, grad_bias)
        else:
            rows = torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)
            inputs, projection = _with_bias(hidden, weight, bias)
            for columns in _slices(hidden.size(0), weight.size(0)):
                grad_logits = (grad_pooled[:, columns].index_select(0, rows)
                               * _derivative(inputs @ projection[columns].t(), ctx.activation))
                if grad_hidden is not None:
                    grad_hidden += grad_logits @ weight[columns]
                if grad_weight is not None:
                    grad_weight[columns] = grad_logits.t() @ hidden
                if grad_bias is not None:
                    grad_bias[columns] = grad_logits.sum(0)
        return grad_hidden, grad_weight, grad_bias, None, None, None


def _winning_tokens(hidden: Tensor, weight: Tensor, bias: Tensor | None, lengths: Tensor, texts: Tensor,
                    entries: Tensor) -> Tensor:
    """For each (text, vocabulary entry) pair, sorted by text, the token of that text with the largest logit.

    Per text, its tokens' logits for its own entries only: (tokens of the text x its positive entries), laid
    out padded as (texts, longest text, most entries of a text), a group of texts at a time.
    """
    num_texts = lengths.numel()
    starts = torch.cumsum(lengths, 0) - lengths
    entries_per_text = torch.bincount(texts, minlength=num_texts)
    entry_starts = torch.cumsum(entries_per_text, 0) - entries_per_text
    longest, most_entries = int(lengths.max()), int(entries_per_text.max()) if texts.numel() else 0
    winners = torch.empty_like(entries)
    if not texts.numel():
        return winners
    group = max(1, TOKENS_TIMES_SLICE // max(longest * most_entries, 1))
    offsets = torch.arange(longest, device=hidden.device)
    entry_offsets = torch.arange(most_entries, device=hidden.device)
    for first in range(0, num_texts, group):
        span = slice(first, min(first + group, num_texts))
        token_valid = offsets < lengths[span].unsqueeze(1)  # (texts, longest)
        token_index = torch.where(token_valid, starts[span].unsqueeze(1) + offsets, 0)
        entry_valid = entry_offsets < entries_per_text[span].unsqueeze(1)  # (texts, most_entries)
        pair_index = torch.where(entry_valid, entry_starts[span].unsqueeze(1) + entry_offsets, 0)
        vocabulary_ids = entries[pair_index]
        logits = torch.bmm(hidden[token_index], weight[vocabulary_ids].transpose(1, 2))  # (texts, longest, entries)
        if bias is not None:
            logits = logits + bias[vocabulary_ids].unsqueeze(1)
        logits = logits.masked_fill(~token_valid.unsqueeze(2), float("-inf"))
        best = starts[span].unsqueeze(1) + logits.argmax(dim=1)  # first of tied maxima
        winners[pair_index[entry_valid]] = best[entry_valid]
    return winners


def _add_gradients(grad_logit: Tensor, tokens: Tensor, vocabulary_ids: Tensor, hidden: Tensor, weight: Tensor,
                   grad_hidden: Tensor | None, grad_weight: Tensor | None, grad_bias: Tensor | None) -> None:
    """The gradients of the logits `grad_logit` at (tokens, vocabulary_ids), through logit = hidden . weight + bias."""
    if grad_hidden is not None:
        grad_hidden.index_add_(0, tokens, grad_logit.unsqueeze(1) * weight[vocabulary_ids])
    if grad_weight is not None:
        grad_weight.index_add_(0, vocabulary_ids, grad_logit.unsqueeze(1) * hidden[tokens])
    if grad_bias is not None:
        grad_bias.index_add_(0, vocabulary_ids, grad_logit)

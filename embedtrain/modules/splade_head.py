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
  logit. The forward finds that logit and the token it came from (texts x vocabulary: a max over each text's
  tokens, laid out padded per group of similar lengths, one block at a time). The gradient reaches only that token, and only where the
  weight is positive (a few hundred entries per text once trained, most of the vocabulary at the start):
  the backward adds it as sparse (tokens x vocabulary) products, one value per winner, recomputing nothing.
- sum pooling: every token contributes, so the backward recomputes each slice's logits.

Ties: when two tokens of a text share the largest positive logit, the gradient goes to one of them (the
first, on the CPU), where autograd's max would split it; exact ties of contextual logits do not occur in
practice.
"""

import torch
from torch import Tensor

from embedtrain.modules.length_chunks import plan_chunks

TOKENS_TIMES_SLICE = 1 << 22
"""Elements of one block of logits (16 MiB in float32): a vocabulary slice is as wide as this allows."""

GROUP_COST = 64
"""What one more group of texts (one more max per block) costs, in padded slots: the length chunks' chunk cost."""


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
    # Inside the autograd function grad mode is off and needs_input_grad ignores it: the winners are kept for a
    # backward only here, where encoding without gradients (evaluation) can be told apart.
    keep_winners = torch.is_grad_enabled() and any(tensor is not None and tensor.requires_grad
                                                    for tensor in (hidden, weight, bias))
    return _SpladePool.apply(hidden, weight, bias, lengths, strategy, activation, keep_winners)


def _slices(rows: int, vocabulary: int) -> list[slice]:
    """Vocabulary slices so that a block of `rows` logits per entry stays within TOKENS_TIMES_SLICE."""
    width = max(1, min(vocabulary, TOKENS_TIMES_SLICE // max(rows, 1)))
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


def _starts(lengths: Tensor) -> Tensor:
    return torch.cumsum(lengths, 0) - lengths


class _SpladePool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, lengths, strategy, activation, keep_winners):
        # Under autocast the logits come out in half precision; the pooled vectors keep the hidden states' dtype.
        pooled = hidden.new_empty(lengths.numel(), weight.size(0))
        inputs, projection = _with_bias(hidden, weight, bias)
        if strategy == "max":
            largest_logits, winners = _largest_logits(inputs, projection, lengths, pooled, keep_winners)
            pooled = _activate(largest_logits, activation)
        else:
            for columns in _slices(hidden.size(0), weight.size(0)):
                logits = (inputs @ projection[columns].t()).to(pooled.dtype)
                pooled[:, columns] = torch.segment_reduce(_activate(logits, activation), "sum", lengths=lengths,
                                                          axis=0, unsafe=True, initial=0)
            largest_logits = winners = hidden.new_empty(0)
        ctx.strategy, ctx.activation, ctx.has_bias = strategy, activation, bias is not None
        ctx.save_for_backward(hidden, weight, bias if bias is not None else hidden.new_empty(0), lengths,
                              largest_logits, winners)
        return pooled

    @staticmethod
    def backward(ctx, grad_pooled):
        hidden, weight, bias, lengths, largest_logits, winners = ctx.saved_tensors
        bias = bias if ctx.has_bias else None
        needs_hidden, needs_weight = ctx.needs_input_grad[:2]
        needs_bias = bias is not None and ctx.needs_input_grad[2]
        if ctx.strategy == "max":
            texts, entries = (largest_logits > 0).nonzero(as_tuple=True)
            tokens = _starts(lengths)[texts] + winners[texts, entries]
            grad_logit = grad_pooled[texts, entries] * _derivative(largest_logits[texts, entries], ctx.activation)
            return (*_winners_gradients(grad_logit, tokens, entries, hidden, weight, needs_hidden, needs_weight,
                                        needs_bias), None, None, None, None)
        grad_hidden = torch.zeros_like(hidden) if needs_hidden else None
        grad_weight = torch.zeros_like(weight) if needs_weight else None
        grad_bias = torch.zeros_like(bias) if needs_bias else None
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
        return grad_hidden, grad_weight, grad_bias, None, None, None, None


def _largest_logits(inputs: Tensor, projection: Tensor, lengths: Tensor, out: Tensor,
                    keep_winners: bool) -> tuple[Tensor, Tensor]:
    """Each text's largest logit per vocabulary entry, 0 where none is positive (or the text has no tokens), into
    `out` (texts, vocabulary); with `keep_winners`, also the position within its text of the token it came from.

    A block of logits (tokens x slice) is laid out padded, texts of similar lengths together (a query and its
    passages would otherwise pad every query to the longest passage): each group is a (texts x its longest text x
    slice) view, -inf where a text has no token, so that one max over its token dimension gives both.
    """
    winners = torch.zeros(out.shape if keep_winners else (0,), dtype=torch.int32, device=out.device)
    groups = _length_groups(lengths.tolist())
    if sum(len(rows) for rows, _ in groups) < lengths.numel():
        out.zero_()  # texts without tokens are in no group
    starts, device = _starts(lengths), lengths.device
    # Each group's texts, and its span of the padded layout (the groups one after another); each text's first slot.
    first_slot, spans, slots = torch.zeros(lengths.numel(), dtype=torch.long), [], 0
    for rows, longest in groups:
        first_slot[rows] = slots + torch.arange(len(rows)) * longest
        spans.append((torch.tensor(rows, device=device), slice(slots, slots + len(rows) * longest), longest))
        slots += len(rows) * longest
    text_of_token = torch.repeat_interleave(torch.arange(lengths.numel(), device=device), lengths)
    token_in_text = torch.arange(inputs.size(0), device=device) - starts[text_of_token]
    padded_position = first_slot.to(device)[text_of_token] + token_in_text
    padded = None
    for columns in _slices(slots, projection.size(0)) if slots else []:
        width = columns.stop - columns.start
        if padded is None or padded.size(1) != width:  # the padding stays -inf: only tokens' rows are copied in
            padded = out.new_full((slots, width), float("-inf"))
        padded.index_copy_(0, padded_position, (inputs @ projection[columns].t()).to(out.dtype))
        for row_index, span, longest in spans:
            largest, position = padded[span].view(row_index.numel(), longest, width).max(dim=1)
            out[row_index, columns] = largest.clamp_(min=0)
            if keep_winners:
                winners[row_index, columns] = position.to(torch.int32)
    return out, winners


def _length_groups(lengths: list[int]) -> list[tuple[list[int], int]]:
    """The texts with tokens in groups of similar lengths, each with its longest length: as few padded slots as
    the planner of length chunks finds, one more group costing as much as GROUP_COST padded slots."""
    texts = [text for text, length in enumerate(lengths) if length > 0]
    # No cap on a group's slots: the blocks' width keeps each one within TOKENS_TIMES_SLICE.
    plan = plan_chunks([lengths[text] for text in texts], GROUP_COST, max_chunk_tokens=len(lengths) * max(lengths, default=0))
    return [([texts[row] for row in rows], lengths[texts[rows[0]]]) for rows in plan]


def _winners_gradients(grad_logit: Tensor, tokens: Tensor, vocabulary_ids: Tensor, hidden: Tensor, weight: Tensor,
                       needs_hidden: bool, needs_weight: bool, needs_bias: bool) -> tuple[Tensor | None, ...]:
    """The gradients of hidden, weight and bias from the logits' gradients `grad_logit` at (tokens, vocabulary_ids),
    through logit = hidden . weight + bias.

    The logits' gradient is a sparse (tokens x vocabulary) matrix G with one value per winning (token, entry):
    grad_hidden = G @ weight and grad_weight = G^T @ hidden, as sparse-dense products in at least float32
    (half-precision sparse products are not available on every device). Gathering a decoder row per value instead
    would write (values x hidden) floats, gigabytes while most of the vocabulary is active.
    """
    dtype = torch.promote_types(torch.promote_types(hidden.dtype, weight.dtype), torch.float32)
    values = grad_logit.to(dtype)
    grad_hidden = grad_weight = grad_bias = None
    if needs_hidden:
        logit_grads = _sorted_sparse(tokens, vocabulary_ids, values, (hidden.size(0), weight.size(0)))
        grad_hidden = torch.sparse.mm(logit_grads, weight.to(dtype)).to(hidden.dtype)
    if needs_weight:
        transposed = _sorted_sparse(vocabulary_ids, tokens, values, (weight.size(0), hidden.size(0)))
        grad_weight = torch.sparse.mm(transposed, hidden.to(dtype)).to(weight.dtype)
    if needs_bias:
        grad_bias = values.new_zeros(weight.size(0)).index_add_(0, vocabulary_ids, values).to(weight.dtype)
    return grad_hidden, grad_weight, grad_bias


def _sorted_sparse(rows: Tensor, columns: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    """A coalesced sparse COO matrix of distinct (rows, columns) positions (each winner is one): sorted here, so
    that torch need not coalesce it again."""
    order = torch.argsort(rows * size[1] + columns)
    indices = torch.stack([rows.index_select(0, order), columns.index_select(0, order)])
    return torch.sparse_coo_tensor(indices, values.index_select(0, order), size, is_coalesced=True,
                                   check_invariants=False)

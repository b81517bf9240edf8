"""Unpadded ("packed") execution of BERT-style encoders: no padding in any matrix product.

The real tokens of a batch are concatenated into one sequence of shape (1, total_tokens) with per-text
position ids, so every linear layer, layer norm and activation of the encoder (all but a few percent
of its work) runs on real tokens only. Attention is the one place where texts must not mix: it goes
through `packed_attention`, registered with transformers' AttentionInterface, which cuts the packed
sequence back into its texts and runs scaled-dot-product attention on length-homogeneous chunks of
them (the `length_chunks` planner), so attention itself carries little padding either.

Only encoders whose token positions are 0..n-1 for a right-padded text qualify (BERT and its
descendants, `PACKABLE_MODEL_TYPES`): others (RoBERTa's positions start after the padding index,
relative and rotary schemes, custom code) run padded, in chunks. The outputs are the padded
computation's up to float rounding (tests/test_packed_attention.py).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from embedtrain.modules.length_chunks import LengthChunking, plan_chunks

ATTENTION_NAME = "embedtrain_packed"
PACKABLE_MODEL_TYPES = frozenset({"bert"})


@dataclass(frozen=True)
class AttentionChunk:
    """Texts of near-equal length: tokens [start, end) of the packed sequence, attended as a (texts, width) block.

    When the texts are not all `width` long, the block is padded: `gather` places each token in its slot
    (padding slots repeat the chunk's first token and are masked out as keys), and `real_slots` takes
    the real tokens' outputs back out of the block.
    """

    start: int
    end: int
    texts: int
    width: int
    gather: Tensor | None = None  # (texts * width,) positions in the packed sequence; None: no padding
    key_mask: Tensor | None = None  # (texts, 1, 1, width), True where a slot holds a real token
    real_slots: Tensor | None = None  # (end - start,) slots holding the chunk's tokens, in packed order


@dataclass(frozen=True)
class PackedLayout:
    """The packed sequence holds the texts chunk by chunk (as `plan_chunks` orders them), so a chunk is a
    contiguous span of it and attention needs no reordering; `tokens` maps packed positions to the flat
    (batch * seq) positions of the padded batch."""

    chunks: tuple[AttentionChunk, ...]
    tokens: Tensor

    @classmethod
    def from_lengths(cls, lengths: list[int], seq: int, chunking: LengthChunking,
                     device: torch.device) -> "PackedLayout":
        chunks, tokens, start = [], [], 0
        for rows in plan_chunks(lengths, chunking.chunk_cost, chunking.max_chunk_tokens):
            width, count = lengths[rows[0]], sum(lengths[row] for row in rows)
            for row in rows:
                tokens.append(torch.arange(row * seq, row * seq + lengths[row]))
            if count == width * len(rows):
                chunks.append(AttentionChunk(start, start + count, len(rows), width))
            else:
                real = torch.zeros(len(rows), width, dtype=torch.bool)
                for slot_row, row in enumerate(rows):
                    real[slot_row, :lengths[row]] = True
                gather = torch.full((len(rows), width), start, dtype=torch.long)
                gather[real] = torch.arange(start, start + count)
                chunks.append(AttentionChunk(start, start + count, len(rows), width, gather.flatten().to(device),
                                             real[:, None, None, :].to(device),
                                             real.flatten().nonzero().squeeze(1).to(device)))
            start += count
        return cls(tuple(chunks), torch.cat(tokens).to(device))


def packed_attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
                     dropout: float = 0.0, scaling: float | None = None, packed_layout: PackedLayout | None = None,
                     **kwargs) -> tuple[Tensor, None]:
    """Attention over a packed sequence (query/key/value: (1, heads, total_tokens, head_dim)) text by text;
    a padded call (no `packed_layout`) is plain SDPA attention. Returns (1, total_tokens, heads, head_dim)."""
    if packed_layout is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    heads, head_dim = query.shape[1], query.shape[3]
    outputs = []
    for chunk in packed_layout.chunks:
        # (1, heads, T, d) -> (texts, heads, width, d)
        query_block, key_block, value_block = (
            (states[0, :, chunk.start:chunk.end] if chunk.gather is None else states[0].index_select(1, chunk.gather))
            .reshape(heads, chunk.texts, chunk.width, head_dim).transpose(0, 1)
            for states in (query, key, value))
        attended = F.scaled_dot_product_attention(query_block, key_block, value_block, attn_mask=chunk.key_mask,
                                                  dropout_p=dropout, scale=scaling)
        attended = attended.transpose(1, 2).reshape(chunk.texts * chunk.width, heads, head_dim)
        outputs.append(attended if chunk.real_slots is None else attended.index_select(0, chunk.real_slots))
    return torch.cat(outputs).unsqueeze(0), None


AttentionInterface.register(ATTENTION_NAME, packed_attention)
# Padded calls of a model switched to packed attention build the same masks as SDPA's.
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def enable_packing(model: PreTrainedModel) -> bool:
    """Switch a packable encoder running SDPA attention to `packed_attention`; False if it does not qualify."""
    config = model.config
    if (config.model_type not in PACKABLE_MODEL_TYPES or getattr(config, "is_decoder", False)
            or not getattr(model, "_supports_attention_backend", False) or config._attn_implementation != "sdpa"):
        return False
    model.set_attn_implementation(ATTENTION_NAME)
    return True


def run_packed(encode: Callable[..., Tensor], inputs: dict[str, Tensor],
               chunking: LengthChunking) -> tuple[Tensor, Tensor]:
    """The per-token outputs of a packable model on right-padded `inputs`, without padding: (outputs of the
    real tokens (total_tokens, dim), their flat positions (total_tokens,) in the padded (batch * seq) layout).

    `encode(packed_inputs, position_ids=..., packed_layout=...)` must pass both keywords to the model and
    return its (1, total_tokens, dim) per-token output. One host read of the row lengths per call.
    """
    mask = inputs["attention_mask"]
    seq = mask.size(1)
    layout = PackedLayout.from_lengths(mask.sum(dim=1).tolist(), seq, chunking, mask.device)
    packed = {key: value.flatten().index_select(0, layout.tokens).unsqueeze(0)
              for key, value in inputs.items() if key != "attention_mask"}
    positions = (layout.tokens % seq).unsqueeze(0)
    return encode(packed, position_ids=positions, packed_layout=layout)[0], layout.tokens


def unpack(outputs: Tensor, tokens: Tensor, batch: int, seq: int) -> Tensor:
    """`run_packed`'s outputs in the padded layout (batch, seq, dim), zeros at padded positions."""
    return outputs.new_zeros(batch * seq, outputs.size(-1)).index_copy(0, tokens, outputs).view(batch, seq, -1)

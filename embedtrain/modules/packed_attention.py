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
    """Texts of near-equal length gathered from the packed sequence into a padded (texts, width) block."""

    gather: Tensor  # (texts * width,) packed position of each slot; padding slots point at position 0
    key_mask: Tensor | None  # (texts, 1, 1, width), True where a slot holds a real token; None without padding
    real_slots: Tensor | None  # slots holding real tokens, in packed order within the chunk; None: every slot
    texts: int
    width: int


@dataclass(frozen=True)
class PackedLayout:
    """Where each text's tokens sit in the packed sequence, and how attention chunks them."""

    chunks: tuple[AttentionChunk, ...]
    restore: Tensor  # chunk-order token index -> packed order

    @classmethod
    def from_lengths(cls, lengths: list[int], chunking: LengthChunking, device: torch.device) -> "PackedLayout":
        starts = [0]
        for length in lengths:
            starts.append(starts[-1] + length)
        chunks, order = [], []
        for rows in plan_chunks(lengths, chunking.chunk_cost, chunking.max_chunk_tokens):
            width = lengths[rows[0]]
            slots = torch.zeros(len(rows), width, dtype=torch.long)
            real = torch.zeros(len(rows), width, dtype=torch.bool)
            for slot_row, row in enumerate(rows):
                slots[slot_row, :lengths[row]] = torch.arange(starts[row], starts[row + 1])
                real[slot_row, :lengths[row]] = True
                order.extend(range(starts[row], starts[row + 1]))
            padded = not bool(real.all())
            chunks.append(AttentionChunk(
                gather=slots.flatten().to(device),
                key_mask=real[:, None, None, :].to(device) if padded else None,
                real_slots=real.flatten().nonzero().squeeze(1).to(device) if padded else None,
                texts=len(rows), width=width))
        restore = torch.empty(len(order), dtype=torch.long)
        restore[torch.tensor(order)] = torch.arange(len(order))
        return cls(tuple(chunks), restore.to(device))


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
            states[0].index_select(1, chunk.gather).view(heads, chunk.texts, chunk.width, head_dim).transpose(0, 1)
            for states in (query, key, value))
        attended = F.scaled_dot_product_attention(query_block, key_block, value_block, attn_mask=chunk.key_mask,
                                                  dropout_p=dropout, scale=scaling)
        attended = attended.transpose(1, 2).reshape(chunk.texts * chunk.width, heads, head_dim)
        outputs.append(attended if chunk.real_slots is None else attended.index_select(0, chunk.real_slots))
    return torch.cat(outputs).index_select(0, packed_layout.restore).unsqueeze(0), None


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


def run_packed(encode: Callable[..., Tensor], inputs: dict[str, Tensor], chunking: LengthChunking) -> Tensor:
    """`encode(inputs)` ((batch, seq, dim) per-token outputs of a packable model, zeros at padded positions)
    without padding. `encode(packed_inputs, position_ids=..., packed_layout=...)` must pass both keywords to the
    model and return its (1, total_tokens, dim) per-token output.

    `inputs` are right-padded; one host read of the row lengths per call.
    """
    mask = inputs["attention_mask"].bool()
    batch, seq = mask.shape
    lengths = mask.sum(dim=1).tolist()
    real = mask.flatten().nonzero().squeeze(1)
    packed = {key: value.flatten().index_select(0, real).unsqueeze(0)
              for key, value in inputs.items() if key != "attention_mask"}
    positions = torch.arange(seq, device=mask.device).expand(batch, seq).flatten().index_select(0, real).unsqueeze(0)
    layout = PackedLayout.from_lengths(lengths, chunking, mask.device)
    hidden = encode(packed, position_ids=positions, packed_layout=layout)[0]
    padded = hidden.new_zeros(batch * seq, hidden.shape[-1]).index_copy(0, real, hidden)
    return padded.view(batch, seq, -1)

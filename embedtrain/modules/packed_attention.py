"""Unpadded ("packed") execution of BERT-style encoders: no padding in any matrix product.

The real tokens of a batch are concatenated into one sequence of shape (1, total_tokens) with per-text
position ids, so every linear layer, layer norm and activation of the encoder (all but a few percent
of its work) runs on real tokens only. Attention is the one place where texts must not mix: it goes
through `packed_attention`, registered with transformers' AttentionInterface, which cuts the packed
sequence back into its texts and runs scaled-dot-product attention on length-homogeneous chunks of
them (the `length_chunks` planner), so attention itself carries little padding either.

Only encoders whose token positions count up one per token from a fixed first position for a right-padded
text (0 for BERT and DistilBERT, the padding index + 1 for RoBERTa and XLM-RoBERTa: `FIRST_POSITIONS`), and whose
forward pass hands its keyword arguments on to the attention function, qualify: others (relative and rotary
schemes, custom code) run padded, in chunks. The outputs are the padded computation's up to float rounding
(tests/unit/modules/test_packed_attention.py).

This plugs into transformers' attention and mask interfaces and reads private attributes, which change between
major versions: before the first packable model is switched, `register_packed_attention` checks that the
installed transformers has all of them (`REQUIRED_TRANSFORMERS_FEATURES`) and otherwise raises an
IncompatibleDependencyError that names the version, what is missing and the tested range, instead of failing
later inside a forward pass or silently computing something else.
"""

import functools
import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import PretrainedConfig, PreTrainedModel

from embedtrain.errors import IncompatibleDependencyError
from embedtrain.modules.length_chunks import LengthChunking, plan_chunks

ATTENTION_NAME = "embedtrain_packed"
FIRST_POSITIONS: dict[str, Callable[[PretrainedConfig], int]] = {
    "bert": lambda config: 0,
    "distilbert": lambda config: 0,
    # RoBERTa numbers a text's tokens from after the padding index (create_position_ids_from_input_ids).
    "roberta": lambda config: config.pad_token_id + 1,
    "xlm-roberta": lambda config: config.pad_token_id + 1,
}
"""The position id of a text's first token, per packable model type (the padded forward pass's for a right-padded
text, whose later tokens count up from it)."""

TESTED_TRANSFORMERS = ">=5.0,<6"
"""The transformers versions embedtrain is tested with: the requirement in pyproject.toml (a test keeps them equal)."""

REQUIRED_TRANSFORMERS_FEATURES = (
    # registering `packed_attention` and its mask function under ATTENTION_NAME
    ("transformers", "AttentionInterface.register"),
    ("transformers.masking_utils", "AttentionMaskInterface.register"),
    ("transformers.masking_utils", "sdpa_mask"),
    # padded calls of a packed model: plain SDPA attention
    ("transformers.integrations.sdpa_attention", "sdpa_attention_forward"),
    # enable_packing: whether a model can switch its attention function, and switching it
    ("transformers", "PreTrainedModel._supports_attention_backend"),
    ("transformers", "PretrainedConfig._attn_implementation"),
    ("transformers", "PreTrainedModel.set_attn_implementation"),
)
"""(module, attribute path) of everything this module uses from transformers. That the model's forward pass hands
`packed_layout` on to the attention function is behaviour, not a name: tests/unit/modules/test_packed_attention.py
checks it."""


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
        # Imported here, not at the top, so that an incompatible transformers fails in register_packed_attention
        # with a clear message (and only for packable models), not with an ImportError when embedtrain loads.
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

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


def missing_transformers_features() -> list[str]:
    """The names of `REQUIRED_TRANSFORMERS_FEATURES` the installed transformers lacks."""
    missing = []
    for module_name, attribute_path in REQUIRED_TRANSFORMERS_FEATURES:
        try:
            target = importlib.import_module(module_name)
            for attribute in attribute_path.split("."):
                target = getattr(target, attribute)
        except (ImportError, AttributeError):
            missing.append(f"{module_name}.{attribute_path}")
    return missing


@functools.cache  # once per process; a failed check is not cached, so it is raised again on the next model
def register_packed_attention() -> None:
    """Register `packed_attention` (and SDPA's mask function for its padded calls) under ATTENTION_NAME;
    IncompatibleDependencyError when the installed transformers lacks an interface or attribute this relies on."""
    if missing := missing_transformers_features():
        version = importlib.metadata.version("transformers")
        raise IncompatibleDependencyError(
            f"transformers {version} lacks what embedtrain's packed attention (for BERT-style encoders) relies on: "
            f"{', '.join(missing)}. embedtrain is tested with transformers{TESTED_TRANSFORMERS}: install a version in "
            f"that range, e.g. pip install 'transformers{TESTED_TRANSFORMERS}'")
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, packed_attention)
    # Padded calls of a model switched to packed attention build the same masks as SDPA's.
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def enable_packing(model: PreTrainedModel) -> bool:
    """Switch a packable encoder running SDPA attention to `packed_attention`; False if it does not qualify.

    IncompatibleDependencyError for a packable model type when transformers lacks what packing relies on."""
    config = model.config
    if config.model_type not in FIRST_POSITIONS or getattr(config, "is_decoder", False):
        return False
    register_packed_attention()
    if not getattr(model, "_supports_attention_backend", False) or config._attn_implementation != "sdpa":
        return False
    model.set_attn_implementation(ATTENTION_NAME)
    return True


def run_packed(encode: Callable[..., Tensor], inputs: dict[str, Tensor], chunking: LengthChunking,
               config: PretrainedConfig) -> tuple[Tensor, Tensor]:
    """The per-token outputs of a packable model (of `config`) on right-padded `inputs`, without padding: (outputs
    of the real tokens (total_tokens, dim), their flat positions (total_tokens,) in the padded (batch * seq) layout).

    `encode(packed_inputs, position_ids=..., packed_layout=...)` must pass both keywords to the model and
    return its (1, total_tokens, dim) per-token output. One host read of the row lengths per call.
    """
    mask = inputs["attention_mask"]
    seq = mask.size(1)
    layout = PackedLayout.from_lengths(mask.sum(dim=1).tolist(), seq, chunking, mask.device)
    packed = {key: value.flatten().index_select(0, layout.tokens).unsqueeze(0)
              for key, value in inputs.items() if key != "attention_mask"}
    positions = (layout.tokens % seq + FIRST_POSITIONS[config.model_type](config)).unsqueeze(0)
    return encode(packed, position_ids=positions, packed_layout=layout)[0], layout.tokens


def unpack(outputs: Tensor, tokens: Tensor, batch: int, seq: int) -> Tensor:
    """`run_packed`'s outputs in the padded layout (batch, seq, dim), zeros at padded positions."""
    return outputs.new_zeros(batch * seq, outputs.size(-1)).index_copy(0, tokens, outputs).view(batch, seq, -1)

"""How a cross-encoder computes the logits of a padded batch of pairs without computing its padding.

Pairs are where padding costs most: a short query and a long passage share one row, and the batch is padded to its
longest pair. As for the embedders (modules/transformer.py), the batch itself is never changed, only its execution:

- BERT-style classifiers run **packed** (`classify_packed`): the real tokens of every pair in one sequence (with their
  positions and token type ids, so the second segment keeps type 1), attention text by text
  (modules/packed_attention.py), then the head of `BertForSequenceClassification` on each pair's first token
  ([CLS]): pooler (dense + tanh), dropout, linear classifier.
- Other classifiers run in **length-homogeneous chunks** of rows (`classify_in_chunks`), each trimmed to its
  longest pair.

Both give the padded computation's logits up to float rounding (tests/unit/models/test_cross_encoder_execution.py).
"""

import torch
from torch import Tensor
from transformers import BertForSequenceClassification, PreTrainedModel

from embedtrain.modules.length_chunks import LengthChunking, plan_chunks
from embedtrain.modules.packed_attention import enable_packing, run_packed

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def enable_packed_classification(model: PreTrainedModel) -> bool:
    """Switch a BERT sequence classifier to packed attention; False for any other model (it runs in chunks)."""
    return isinstance(model, BertForSequenceClassification) and enable_packing(model)


def classify(model: PreTrainedModel, inputs: dict[str, Tensor], chunking: LengthChunking | None,
             packing: bool, padding_side: str) -> Tensor:
    """(batch, num_labels) logits of `model` on tokenized pairs `inputs`; without the padding when `chunking` is set
    and the batch is right-padded."""
    inputs = {key: inputs[key] for key in MODEL_INPUTS if key in inputs}
    padded = "attention_mask" in inputs and not bool(inputs["attention_mask"].all())
    if not (chunking and padded and padding_side == "right" and chunking.runs_on(inputs["attention_mask"].device)):
        return model(**inputs, return_dict=True).logits
    if packing:
        return classify_packed(model, inputs, chunking)
    return classify_in_chunks(model, inputs, chunking)


def classify_packed(model: BertForSequenceClassification, inputs: dict[str, Tensor], chunking: LengthChunking) -> Tensor:
    """`BertForSequenceClassification` on right-padded pairs, computed packed (see the module docstring)."""
    encoder = model.base_model
    outputs, tokens = run_packed(
        lambda packed, **options: encoder(**packed, **options, return_dict=True).last_hidden_state, inputs, chunking,
        model.config)
    batch, seq = inputs["attention_mask"].shape
    # Where each flat (row * seq + position) token sits in the packed sequence; row r's [CLS] is flat token r * seq.
    packed_index = torch.empty(batch * seq, dtype=torch.long, device=tokens.device)
    packed_index.scatter_(0, tokens, torch.arange(tokens.numel(), device=tokens.device))
    first_tokens = outputs.index_select(0, packed_index[torch.arange(batch, device=tokens.device) * seq])
    # The pooler reads position 0 of a (batch, tokens, hidden) input: the [CLS] states as one-token texts.
    pooled = encoder.pooler(first_tokens.unsqueeze(1))
    return model.classifier(model.dropout(pooled))


def classify_in_chunks(model: PreTrainedModel, inputs: dict[str, Tensor], chunking: LengthChunking) -> Tensor:
    """`model` on right-padded pairs, rows grouped into chunks of near-equal length (`plan_chunks`), each chunk
    trimmed to its longest pair; the logits come back in the rows' order. One host read of the row lengths."""
    mask = inputs["attention_mask"]
    lengths = mask.sum(dim=1).tolist()
    logits, rows_in_order = [], []
    for rows in plan_chunks(lengths, chunking.chunk_cost, chunking.max_chunk_tokens):
        index = torch.tensor(rows, device=mask.device)
        width = lengths[rows[0]]
        chunk = {key: value.index_select(0, index)[:, :width] for key, value in inputs.items()}
        logits.append(model(**chunk, return_dict=True).logits)
        rows_in_order.extend(rows)
    restore = torch.empty(len(rows_in_order), dtype=torch.long)
    restore[torch.tensor(rows_in_order)] = torch.arange(len(rows_in_order))
    return torch.cat(logits).index_select(0, restore.to(mask.device))

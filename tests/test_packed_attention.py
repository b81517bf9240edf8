"""Packed (unpadded) execution: the encoder sees only real tokens and gives the padded outputs."""

from pathlib import Path

import torch
from test_loss_parity import ANCHORS, POSITIVES
from transformers import AutoModel, RobertaConfig, RobertaModel

from embedtrain.models.io import load_model
from embedtrain.modules.length_chunks import LengthChunking
from embedtrain.modules.packed_attention import PackedLayout, enable_packing, run_packed


def test_packed_hidden_states_equal_the_padded_ones(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    features = model.tokenize(ANCHORS + POSITIVES)
    inputs = {key: features[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    encoder = model.transformer.auto_model
    padded = encoder(**inputs).last_hidden_state
    mask = inputs["attention_mask"].bool()
    for chunking in (LengthChunking(chunk_cost=0), LengthChunking(), LengthChunking(chunk_cost=10**6)):
        packed = run_packed(model.transformer._token_outputs, inputs, chunking)
        torch.testing.assert_close(packed[mask], padded[mask], rtol=1e-5, atol=1e-5)
        assert not packed[~mask].any()


def test_the_encoder_computes_real_tokens_only(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    shapes = []
    model.transformer.auto_model.embeddings.word_embeddings.register_forward_pre_hook(
        lambda module, args: shapes.append(tuple(args[0].shape)))
    features = model.tokenize(ANCHORS)
    model(features)
    assert shapes == [(1, int(features["attention_mask"].sum()))]


def test_the_layout_gathers_each_text_and_restores_the_packed_order() -> None:
    lengths = [3, 1, 3, 2]
    layout = PackedLayout.from_lengths(lengths, LengthChunking(chunk_cost=0), torch.device("cpu"))
    tokens = torch.arange(sum(lengths))  # packed positions: text 0 is 0-2, text 1 is 3, text 2 is 4-6, text 3 is 7-8
    gathered = []
    for chunk in layout.chunks:
        slots = tokens.index_select(0, chunk.gather)
        gathered.append(slots if chunk.real_slots is None else slots.index_select(0, chunk.real_slots))
    assert [chunk.width for chunk in layout.chunks] == [3, 2, 1]
    assert torch.equal(torch.cat(gathered).index_select(0, layout.restore), tokens)


def test_only_bert_style_sdpa_encoders_are_packed(tiny_checkpoint: Path) -> None:
    assert enable_packing(AutoModel.from_pretrained(tiny_checkpoint))
    assert not enable_packing(AutoModel.from_pretrained(tiny_checkpoint, attn_implementation="eager"))
    roberta = RobertaModel(RobertaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=64))
    assert not enable_packing(roberta)  # its positions start after the padding index

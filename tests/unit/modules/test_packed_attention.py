"""Packed (unpadded) execution: the encoder sees only real tokens and gives the padded outputs."""

import re
from pathlib import Path

import pytest
import torch
import transformers
from helpers.sparse_models import make_tiny_mlm_checkpoint
from helpers.texts import ANCHORS, POSITIVES
from transformers import AutoModel, DistilBertConfig, MPNetConfig, RobertaConfig, XLMRobertaConfig

from embedtrain.errors import IncompatibleDependencyError
from embedtrain.models.io import load_model
from embedtrain.modules.length_chunks import LengthChunking
from embedtrain.modules.packed_attention import (
    TESTED_TRANSFORMERS,
    PackedLayout,
    enable_packing,
    missing_transformers_features,
    register_packed_attention,
    run_packed,
    unpack,
)


def test_packed_hidden_states_equal_the_padded_ones(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    features = model.tokenize(ANCHORS + POSITIVES)
    inputs = {key: features[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    encoder = model.input_module.auto_model
    padded = encoder(**inputs).last_hidden_state
    mask = inputs["attention_mask"].bool()
    for chunking in (LengthChunking(chunk_cost=0), LengthChunking(), LengthChunking(chunk_cost=10**6)):
        packed = unpack(*run_packed(model.input_module._token_outputs, inputs, chunking, encoder.config), *mask.shape)
        torch.testing.assert_close(packed[mask], padded[mask], rtol=1e-5, atol=1e-5)
        assert not packed[~mask].any()


def test_the_encoder_computes_real_tokens_only(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    shapes = []
    model.input_module.auto_model.embeddings.word_embeddings.register_forward_pre_hook(
        lambda module, args: shapes.append(tuple(args[0].shape)))
    features = model.tokenize(ANCHORS)
    model(features)
    assert shapes == [(1, int(features["attention_mask"].sum()))]


def test_the_layout_packs_texts_chunk_by_chunk() -> None:
    lengths, seq = [3, 1, 3, 2], 4
    layout = PackedLayout.from_lengths(lengths, seq, LengthChunking(chunk_cost=0), torch.device("cpu"))
    # Texts 0 and 2 (3 tokens) form one chunk, then text 3, then text 1; each text's tokens in order.
    assert layout.tokens.tolist() == [0, 1, 2, 8, 9, 10, 12, 13, 4]
    assert [(chunk.start, chunk.end, chunk.texts, chunk.width) for chunk in layout.chunks] == [
        (0, 6, 2, 3), (6, 8, 1, 2), (8, 9, 1, 1)]
    assert all(chunk.gather is None for chunk in layout.chunks)  # equal lengths: plain spans

    padded = PackedLayout.from_lengths(lengths, seq, LengthChunking(chunk_cost=10**6), torch.device("cpu"))
    (chunk,) = padded.chunks
    assert (chunk.texts, chunk.width) == (4, 3)
    slots = torch.arange(9).index_select(0, chunk.gather)
    assert torch.equal(slots.index_select(0, chunk.real_slots), torch.arange(9))
    assert chunk.key_mask.flatten().tolist() == [True] * 6 + [True, True, False] + [True, False, False]


TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 50}
PACKABLE_CONFIGS = {
    "distilbert": DistilBertConfig(vocab_size=50, dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    # Positions from the padding index + 1 on (pad_token_id 1: positions 2, 3, ...).
    "roberta": RobertaConfig(**TINY, pad_token_id=1, max_position_embeddings=20),
    "xlm-roberta": XLMRobertaConfig(**TINY, pad_token_id=1, max_position_embeddings=20),
}


@pytest.mark.parametrize("config", PACKABLE_CONFIGS.values(), ids=PACKABLE_CONFIGS.keys())
def test_packed_encoders_give_the_padded_hidden_states(config) -> None:
    torch.manual_seed(0)
    encoder = AutoModel.from_config(config, attn_implementation="sdpa").eval()
    assert enable_packing(encoder)
    lengths = torch.tensor([5, 1, 9, 3, 9])
    mask = torch.arange(9) < lengths.unsqueeze(1)
    input_ids = torch.randint(3, config.vocab_size, mask.shape).masked_fill(~mask, config.pad_token_id)
    inputs = {"input_ids": input_ids, "attention_mask": mask.long()}
    padded = encoder(**inputs).last_hidden_state

    def encode(packed_inputs, **options):
        return encoder(**packed_inputs, **options).last_hidden_state

    packed = unpack(*run_packed(encode, inputs, LengthChunking(), encoder.config), *mask.shape)
    torch.testing.assert_close(packed[mask], padded[mask], rtol=1e-5, atol=1e-5)


def test_only_bert_style_sdpa_encoders_are_packed(tiny_checkpoint: Path) -> None:
    assert enable_packing(AutoModel.from_pretrained(tiny_checkpoint))
    assert not enable_packing(AutoModel.from_pretrained(tiny_checkpoint, attn_implementation="eager"))
    mpnet = AutoModel.from_config(MPNetConfig(**TINY))
    assert not enable_packing(mpnet)  # relative position buckets


@pytest.mark.parametrize("architecture", ["bert", "distilbert"])
def test_splade_pools_the_packed_tokens_as_the_padded_ones(tmp_path: Path, architecture: str) -> None:
    from embedtrain.models.build import build_model
    from embedtrain.models.config import ModelConfig

    checkpoint = make_tiny_mlm_checkpoint(tmp_path / architecture, architecture=architecture)
    results = {}
    for packed in (True, False):
        model = build_model(ModelConfig(base=str(checkpoint), kind="sparse")).train()
        assert model.input_module.packing
        model.input_module.packing = packed
        features = model.tokenize(ANCHORS + POSITIVES)
        embeddings = model(features)["sentence_embedding"]
        # No logits tensor at all: the fused head pools the real tokens' decoder inputs (test_splade_head.py).
        assert "token_embeddings" not in features and "packed_token_embeddings" not in features
        assert features["decoder_inputs"].size(0) == int(features["attention_mask"].sum())
        (embeddings * torch.linspace(-1, 1, embeddings.size(1))).sum().backward()
        results[packed] = embeddings.detach(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    (packed_embeddings, packed_grads), (padded_embeddings, padded_grads) = results[True], results[False]
    torch.testing.assert_close(packed_embeddings, padded_embeddings, rtol=1e-5, atol=1e-5)
    largest = max(grad.abs().max().item() for grad in padded_grads.values())
    for name, grad in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-5 * largest, msg=name)


class InterfaceWithoutRegister:
    """An AttentionInterface as a transformers without the registry would have it."""


MISSING = {
    "attention-interface": ("transformers", "AttentionInterface"),
    "mask-interface": ("transformers.masking_utils", "AttentionMaskInterface"),
    "sdpa-attention": ("transformers.integrations.sdpa_attention", "sdpa_attention_forward"),
    "private-model-attribute": ("transformers.PreTrainedModel", "_supports_attention_backend"),
    "private-config-attribute": ("transformers.PretrainedConfig", "_attn_implementation"),
    "set-attention": ("transformers.PreTrainedModel", "set_attn_implementation"),
}


@pytest.mark.parametrize(("owner", "name"), MISSING.values(), ids=MISSING.keys())
def test_a_transformers_without_what_packing_uses_is_a_clear_error(monkeypatch, tiny_checkpoint, owner, name):
    model = AutoModel.from_pretrained(tiny_checkpoint)
    if name == "AttentionInterface":  # the lazy `transformers` module would import a deleted name again
        monkeypatch.setattr(f"{owner}.{name}", InterfaceWithoutRegister)
    else:
        monkeypatch.delattr(f"{owner}.{name}")
    register_packed_attention.cache_clear()  # this process registered it already, with the real transformers
    with pytest.raises(IncompatibleDependencyError) as error:
        enable_packing(model)
    message = str(error.value)
    assert f"transformers {transformers.__version__} lacks" in message
    assert f"{owner}.{name}" in message
    assert f"tested with transformers{TESTED_TRANSFORMERS}" in message and "pip install" in message
    monkeypatch.undo()
    assert enable_packing(model)  # the check runs again and passes with everything back


def test_non_packable_models_do_not_need_packing_support(monkeypatch):
    monkeypatch.delattr("transformers.masking_utils.AttentionMaskInterface")
    register_packed_attention.cache_clear()
    assert not enable_packing(AutoModel.from_config(MPNetConfig(**TINY)))


def test_the_tested_transformers_range_is_the_declared_requirement():
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'"transformers(.*?)"', pyproject).group(1) == TESTED_TRANSFORMERS
    assert missing_transformers_features() == []  # the installed version has everything


def test_the_cli_reports_an_incompatible_transformers_without_a_traceback(monkeypatch, tiny_checkpoint, sts_csv):
    from typer.testing import CliRunner

    from embedtrain.cli import app
    from embedtrain.errors import ExitCode

    monkeypatch.delattr("transformers.masking_utils.sdpa_mask")
    register_packed_attention.cache_clear()
    result = CliRunner().invoke(app, ["eval", str(tiny_checkpoint), "--evaluator", "sts", "--data", str(sts_csv)])
    assert result.exit_code == ExitCode.RUNTIME_FAILURE, result.output
    assert "lacks what embedtrain's packed attention" in " ".join(result.output.split())
    assert "Traceback" not in result.output

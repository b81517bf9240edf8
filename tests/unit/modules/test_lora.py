"""LoRA on a Transformer module (embedtrain.modules.lora): the adapter's forward pass and gradients are the same
packed as padded, and it saves, loads and merges without changing the outputs."""

from pathlib import Path

import pytest
import torch
from helpers.texts import ANCHORS, POSITIVES

from embedtrain.models.io import load_model
from embedtrain.modules.lora import ADAPTER_CONFIG_FILE, LoraSettings, add_lora, merge_adapter
from embedtrain.modules.transformer import Transformer

pytest.importorskip("peft", reason="LoRA needs the lora extra (peft)")


def adapted_model(tiny_checkpoint: Path):
    """The tiny BERT with an adapter on every linear layer whose B matrices are random, so that it changes the
    outputs (a fresh adapter is a no-op)."""
    model = load_model(tiny_checkpoint)
    transformer = model.input_module
    transformer.adapter = add_lora(transformer.auto_model, LoraSettings(4, 8.0, 0.0, "all-linear", "org/tiny"))
    torch.manual_seed(0)
    for name, parameter in transformer.auto_model.named_parameters():
        if ".lora_B." in name:
            torch.nn.init.normal_(parameter, std=0.1)
    return model


def embeddings_and_adapter_gradients(model, packed: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The embeddings and the gradients of every trainable weight (but the pooler's adapter: BERT's pooler output
    is not what a sentence embedding pools, so it gets no gradient)."""
    model.zero_grad()
    if not packed:
        model.input_module.length_chunking = None
    embeddings = model(model.tokenize(ANCHORS + POSITIVES))["sentence_embedding"]
    embeddings.pow(2).sum().backward()
    return embeddings.detach(), {name: parameter.grad.clone() for name, parameter in model.named_parameters()
                                 if parameter.requires_grad and "pooler" not in name}


def test_packed_execution_gives_the_padded_embeddings_and_adapter_gradients(tiny_checkpoint: Path) -> None:
    model = adapted_model(tiny_checkpoint)
    shapes = []
    model.input_module.auto_model.embeddings.word_embeddings.register_forward_pre_hook(
        lambda module, args: shapes.append(tuple(args[0].shape)))
    packed, packed_gradients = embeddings_and_adapter_gradients(model, packed=True)
    assert shapes[0][0] == 1  # one packed sequence of real tokens
    padded, padded_gradients = embeddings_and_adapter_gradients(model, packed=False)
    torch.testing.assert_close(packed, padded, rtol=1e-5, atol=1e-5)
    assert packed_gradients.keys() == padded_gradients.keys() and all(".lora_" in name for name in packed_gradients)
    for name, gradient in padded_gradients.items():
        torch.testing.assert_close(packed_gradients[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_an_adapter_saves_loads_and_merges_to_the_same_embeddings(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from embedtrain.models.io import save_model

    model = adapted_model(tiny_checkpoint)
    expected = model.encode(ANCHORS)
    model.input_module.adapter.base_model_name_or_path = str(tiny_checkpoint)
    save_model(model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / ADAPTER_CONFIG_FILE).exists()
    reloaded = load_model(tmp_path / "adapter")
    assert isinstance(reloaded.input_module, Transformer) and reloaded.input_module.adapter is not None
    torch.testing.assert_close(reloaded.encode(ANCHORS), expected, rtol=0, atol=1e-6)
    transformer = reloaded.input_module
    transformer.auto_model, transformer.adapter = merge_adapter(transformer.auto_model), None
    assert not any(".lora_" in name for name in transformer.state_dict())
    torch.testing.assert_close(reloaded.encode(ANCHORS), expected, rtol=0, atol=1e-5)

"""LoRA on a decoder embedder shaped as Qwen3-Embedding (tiny random Qwen3: last-token pooling, EOS appended by the
tokenizer, left padding, an instruction prompt on queries only): it trains, its adapter and its merged weights load
in sentence-transformers with the same embeddings, and the loss and the adapter's gradients equal the reference's."""

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState
from helpers.loss_cases import TRIPLET_COLUMNS
from helpers.parity import Case, build_both, run_both
from helpers.texts import ANCHORS, POSITIVES
from helpers.tiny_models import make_tiny_decoder_checkpoint
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from embedtrain.engine.run import checked_data, run_training
from embedtrain.models import load_model
from embedtrain.models.adapters import merge_saved_adapter
from embedtrain.recipe.build import build_training_model
from embedtrain.recipe.loading import load_recipe

INSTRUCTION = "Instruct: find the sentence that means the same\nQuery: "


def decoder_recipe(directory: Path, base: Path, triplet_csv: Path) -> Path:
    recipe = {
        "model": {"base": str(base), "pooling": "lasttoken", "normalize": True, "prompts": {"query": INSTRUCTION},
                  "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}},
        "losses": {"main": {"type": "MultipleNegativesRankingLoss"}},
        "datasets": {"train": {"triplets": {"source": str(triplet_csv), "columns": TRIPLET_COLUMNS,
                                            "prompts": {"anchor": "query"}}}},
        "training": {"output_dir": str(directory / "run"), "batch_size": 6, "max_steps": 3, "learning_rate": 1e-2,
                     "eval_before_training": False},
    }
    (directory / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return directory / "recipe.yaml"


@pytest.fixture(scope="module")
def decoder_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_decoder_checkpoint(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="module")
def trained_decoder(tmp_path_factory, decoder_checkpoint, triplet_csv) -> Path:
    """The final folder of a few LoRA steps on the tiny decoder."""
    AcceleratorState._reset_state(reset_partial_state=True)
    recipe = decoder_recipe(tmp_path_factory.mktemp("decoder-lora"), decoder_checkpoint, triplet_csv)
    result = run_training(load_recipe(recipe))
    AcceleratorState._reset_state(reset_partial_state=True)
    return result.final_dir


def test_a_left_padded_model_runs_padded_and_the_log_says_so(tmp_path, decoder_checkpoint, triplet_csv, caplog):
    recipe = load_recipe(decoder_recipe(tmp_path, decoder_checkpoint, triplet_csv))
    plan, _ = checked_data(recipe)
    with caplog.at_level(logging.INFO, logger="embedtrain.recipe.build"):
        build_training_model(recipe, plan)
    assert "pads on the left" in caplog.text and "without length-aware execution" in caplog.text


def test_the_decoder_adapter_and_its_merge_load_in_the_reference_with_the_same_embeddings(trained_decoder, tmp_path):
    assert (trained_decoder / "adapter_model.safetensors").exists()
    settings = json.loads((trained_decoder / "config_sentence_transformers.json").read_text())
    assert settings["prompts"]["query"] == INSTRUCTION
    ours = load_model(trained_decoder)
    assert ours.input_module.tokenizer.padding_side == "left"
    reference = SentenceTransformer(str(trained_decoder), device="cpu")
    texts = ANCHORS[:3] + POSITIVES[:2]  # different lengths: left padding in the batch
    for prompt_name in (None, "query"):
        expected = reference.encode(texts, prompt_name=prompt_name, convert_to_tensor=True)
        assert float((ours.encode(texts, prompt_name=prompt_name) - expected).abs().max()) < 1e-5

    merged = tmp_path / "merged"
    shutil.copytree(trained_decoder, merged)
    merge_saved_adapter(merged)
    assert (merged / "model.safetensors").exists() and not (merged / "adapter_config.json").exists()
    expected = reference.encode(texts, convert_to_tensor=True)
    actual = SentenceTransformer(str(merged), device="cpu").encode(texts, convert_to_tensor=True)
    assert float((actual - expected).abs().max()) < 1e-5


def test_the_decoder_adapters_loss_and_gradients_equal_the_references(trained_decoder):
    case = Case({"type": "MultipleNegativesRankingLoss"}, MultipleNegativesRankingLoss,
                [ANCHORS[:4], POSITIVES[:4]])
    st_model, st_loss, model, loss = build_both(case, trained_decoder)
    for name, parameter in st_model.named_parameters():  # the reference loads an adapter for inference, frozen
        parameter.requires_grad_(".lora_" in name)
    value, expected = run_both(case, st_model, st_loss, model, loss)
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    theirs = {name: parameter.grad for name, parameter in st_model[0].auto_model.named_parameters()
              if parameter.requires_grad}
    ours = {name: parameter.grad for name, parameter in model.input_module.auto_model.named_parameters()
            if parameter.requires_grad}
    assert ours.keys() == theirs.keys() and all(".lora_" in name for name in ours)
    for name, gradient in theirs.items():
        torch.testing.assert_close(ours[name], gradient, rtol=1e-4, atol=1e-6, msg=name)

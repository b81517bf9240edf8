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
from helpers.mirror import write_test_mirror
from helpers.parity import Case, build_both, run_both
from helpers.texts import ANCHORS, POSITIVES
from helpers.tiny_models import TINY_MAX_LENGTH, make_tiny_decoder_checkpoint, make_tiny_qwen3_embedding
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.data.mirror import ENV_VAR
from embedtrain.engine.run import checked_data, run_training
from embedtrain.errors import RecipeError
from embedtrain.models import load_model
from embedtrain.models.adapters import merge_saved_adapter
from embedtrain.recipe.build import build_training_model
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster than several competing ones
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



def test_a_bf16_base_trains_an_fp32_adapter_as_closely_as_bf16_compute_over_fp32_weights(tmp_path, decoder_checkpoint,
                                                                                        triplet_csv):
    """model.dtype: bfloat16 holds the frozen base in bf16 (half its memory) while the adapter trains in fp32; under
    bf16 autocast the losses follow those of fp32 weights within bf16's rounding, and the saved adapter is fp32."""
    from safetensors.torch import load_file

    losses, adapters = {}, {}
    for dtype in ("float32", "bfloat16"):
        AcceleratorState._reset_state(reset_partial_state=True)
        directory = tmp_path / dtype
        directory.mkdir()
        recipe = load_recipe(decoder_recipe(directory, decoder_checkpoint, triplet_csv),
                             [f"model.dtype={dtype}", "training.precision=bf16", "training.logging_steps=1",
                              "training.learning_rate=1e-4"])
        if dtype == "bfloat16":
            model = build_training_model(recipe, checked_data(recipe)[0])
            weights = dict(model.input_module.auto_model.named_parameters())
            assert {w.dtype for name, w in weights.items() if ".lora_" not in name} == {torch.bfloat16}
            assert {w.dtype for name, w in weights.items() if ".lora_" in name} == {torch.float32}
            assert all(w.requires_grad == (".lora_" in name) for name, w in weights.items())
            AcceleratorState._reset_state(reset_partial_state=True)
        result = run_training(recipe)
        records = [json.loads(line) for line in (directory / "run" / "metrics.jsonl").read_text().splitlines()]
        losses[dtype] = [record["loss"] for record in records if "loss" in record]
        adapters[dtype] = load_file(result.final_dir / "adapter_model.safetensors")
    AcceleratorState._reset_state(reset_partial_state=True)

    assert len(losses["bfloat16"]) == 3
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=2e-2)
    assert {weight.dtype for weight in adapters["bfloat16"].values()} == {torch.float32}
    assert adapters["bfloat16"].keys() == adapters["float32"].keys()


def test_bf16_weights_need_an_adapter_and_bf16_compute(tmp_path, decoder_checkpoint, triplet_csv):
    path = decoder_recipe(tmp_path, decoder_checkpoint, triplet_csv)
    with pytest.raises(RecipeError, match=r"training\.precision.*model\.dtype: bfloat16 computes in bf16; set "
                                          r"training\.precision: bf16 \(not auto\)"):
        load_recipe(path, ["model.dtype=bfloat16"])
    with pytest.raises(RecipeError, match=r"model: dtype: bfloat16 is for the frozen base of a LoRA run"):
        load_recipe(path, ["model.dtype=bfloat16", "training.precision=bf16", "model.kind=sparse", "model.lora=null",
                           "model.pooling=null", "model.normalize=null"])
    recipe = load_recipe(path, ["model.dtype=bfloat16", "training.precision=bf16", "model.lora=null"])
    with pytest.raises(RecipeError, match=r"^model\.dtype: bfloat16 is for the frozen base of a LoRA run, and .* "
                                          r"trains without an adapter .*keep dtype: float32 and set training\.precision: "
                                          r"bf16"):
        build_training_model(recipe, checked_data(recipe)[0])


def test_a_bf16_base_continues_the_adapter_of_an_adapter_model(trained_decoder, tmp_path, triplet_csv):
    """A base that is an adapter model (a previous run's final/) trains that adapter: its base may be held in bf16."""
    recipe = load_recipe(decoder_recipe(tmp_path, trained_decoder, triplet_csv),
                         ["model.dtype=bfloat16", "training.precision=bf16", "model.lora=null", "model.pooling=null",
                          "model.normalize=null"])
    model = build_training_model(recipe, checked_data(recipe)[0])
    weights = dict(model.input_module.auto_model.named_parameters())
    assert {w.dtype for name, w in weights.items() if ".lora_" in name} == {torch.float32}
    assert {w.dtype for name, w in weights.items() if ".lora_" not in name} == {torch.bfloat16}

# The shipped decoder recipe (recipes/qwen3-embedding-lora.yaml) through the test mirror, its Qwen3-Embedding mapped to
# a tiny random Qwen3 saved in its layout (sentence-transformers modules, left padding, EOS appended, its prompts).
# tests/e2e/test_shipped_recipes.py validates its data and trains it 2 steps, as every recipe of the catalogue.

SHIPPED = Path(__file__).resolve().parents[2] / "recipes" / "qwen3-embedding-lora.yaml"


@pytest.fixture(scope="module")
def decoder_mirror(tmp_path_factory) -> Path:
    model = make_tiny_qwen3_embedding(tmp_path_factory.mktemp("qwen3-embedding") / "tiny")
    return write_test_mirror(tmp_path_factory.mktemp("mirror"), models={"Qwen/Qwen3-Embedding-0.6B": model})


def shipped_overrides(output_dir: Path, *more: str, evaluate: bool = True) -> list[str]:
    """A few small batches of the recipe; its NanoBEIR evaluation on NQ's stand-in alone, or none."""
    evaluation = (["evaluators.0.dataset_names=[nq]"] if evaluate else
                  ["evaluators=[]", "training.metric_for_best_model=null", "training.eval_before_training=false"])
    return [f"training.output_dir={output_dir}", "training.max_steps=3", "training.batch_size=8",
            "training.logging_steps=1", f"model.max_seq_length={TINY_MAX_LENGTH}", *evaluation, *more]


def test_the_decoder_recipes_dry_run_passes_and_says_its_batches_run_padded(tmp_path, decoder_mirror, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(decoder_mirror))
    AcceleratorState._reset_state(reset_partial_state=True)
    overrides = [argument for item in shipped_overrides(tmp_path / "run") for argument in ("--set", item)]
    result = CliRunner().invoke(app, ["train", str(SHIPPED), "--dry-run", *overrides], terminal_width=300)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "dry run: every check passed" in output
    assert ("the encoder computes it (training.length_chunking is off or auto on a GPU, or the model pads on the "
            "left)") in output
    assert not (tmp_path / "run").exists()


def test_the_decoder_recipe_trains_alike_with_gradient_checkpointing(tmp_path, decoder_mirror, monkeypatch):
    """The recipe's LoRA dropout included: the recomputed forward pass replays the same dropout masks."""
    monkeypatch.setenv(ENV_VAR, str(decoder_mirror))
    losses = {}
    for checkpointing in (False, True):
        AcceleratorState._reset_state(reset_partial_state=True)
        output_dir = tmp_path / str(checkpointing)
        recipe = load_recipe(SHIPPED, shipped_overrides(output_dir, f"training.gradient_checkpointing={checkpointing}",
                                                           evaluate=False))
        result = run_training(recipe)
        records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
        losses[checkpointing] = [record["loss"] for record in records if "loss" in record]
        card = (result.final_dir / "README.md").read_text(encoding="utf-8")
        assert "saved merged into the base model's weights" in card and "`q_proj`" in card
    assert len(losses[False]) == 3
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)

    # and the decoder's layers do run again in the backward pass
    AcceleratorState._reset_state(reset_partial_state=True)
    recipe = load_recipe(SHIPPED, shipped_overrides(tmp_path / "built", "training.gradient_checkpointing=true",
                                                    evaluate=False))
    model = build_training_model(recipe, checked_data(recipe)[0])
    AcceleratorState._reset_state(reset_partial_state=True)
    calls = []
    # Before a module inside the layer: transformers checkpoints the layer's forward, so hooks on the layer itself run
    # once, and the recomputation stops at the layer's last saved tensor, inside the MLP's last projection.
    model.input_module.auto_model.layers[0].mlp.register_forward_pre_hook(lambda *args: calls.append(1))
    model.train()
    model(model.tokenize(["a man plays the guitar", "a dog"]))["sentence_embedding"].sum().backward()
    assert len(calls) == 2

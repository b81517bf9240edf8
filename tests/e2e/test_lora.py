"""LoRA adapters (`model.lora`) end to end on the tiny random BERT: only the adapter trains, the saved adapter (and
the merged model) loads in sentence-transformers with the same embeddings, resume is exact, errors are clear."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState
from helpers.loss_cases import CASES
from helpers.observers import StopAt
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from typer.testing import CliRunner

from embedtrain.card.dense_card import dense_sections
from embedtrain.cli import app
from embedtrain.engine.run import checked_data, prepare_trainer, run_training
from embedtrain.engine.trainer import build_accelerator
from embedtrain.errors import ExitCode
from embedtrain.models import load_model
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

runner = CliRunner()
TEXTS = ["a man plays the guitar", "the dog runs in the park", "what is the weather today", "two people read a book"]
LORA = {"r": 4, "alpha": 8, "dropout": 0.1}


def write_recipe(directory: Path, base: str, sts_csv: Path, lora: dict | None = None, **training) -> Path:
    recipe = {
        "model": {"base": base, "lora": LORA if lora is None else lora},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
        "training": {"output_dir": str(directory / "run"), "epochs": 1, "batch_size": 8, "learning_rate": 1e-2,
                     "logging_steps": 1, "seed": 7, "eval_before_training": False} | training,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def train_losses(output_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return {record["step"]: record["loss"] for record in records if "loss" in record}


def reference_embeddings(folder: Path) -> torch.Tensor:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_tensor=True)


def test_only_the_adapter_weights_change_and_the_saved_adapter_loads_in_the_reference(tmp_path, tiny_checkpoint,
                                                                                      sts_csv):
    recipe = load_recipe(write_recipe(tmp_path, str(tiny_checkpoint), sts_csv, max_steps=2))
    plan, tokenization = checked_data(recipe)
    trainer = prepare_trainer(recipe, plan, {}, tokenization, build_accelerator(recipe.training))
    (tmp_path / "run").mkdir()  # what run_training does before handing over to the trainer
    before = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trainable = {name for name, parameter in trainer.model.named_parameters() if parameter.requires_grad}
    assert trainable and all(".lora_A." in name or ".lora_B." in name for name in trainable)
    result = trainer.train()

    after = trainer.model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == trainable  # every adapter weight moved (B starts at zero), nothing else did

    final = result.final_dir
    assert (final / "adapter_config.json").exists() and (final / "adapter_model.safetensors").exists()
    assert not (final / "model.safetensors").exists() and not (final / "config.json").exists()
    saved = load_file(final / "adapter_model.safetensors")
    assert all(key.startswith("base_model.model.") and ".lora_" in key for key in saved)
    assert json.loads((final / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_checkpoint)

    trained = trainer.model.encode(TEXTS)
    assert float((load_model(final).encode(TEXTS) - trained).abs().max()) < 1e-6
    assert float((reference_embeddings(final) - trained).abs().max()) < 1e-5
    assert float((reference_embeddings(tiny_checkpoint) - trained).abs().max()) > 1e-3  # the adapter changed them


def test_a_merged_final_model_loads_in_the_reference_with_the_adapter_models_embeddings(tmp_path, tiny_checkpoint,
                                                                                        sts_csv):
    adapter = run_training(load_recipe(write_recipe(tmp_path / "adapter", str(tiny_checkpoint), sts_csv, max_steps=3)))
    AcceleratorState._reset_state(reset_partial_state=True)
    merged = run_training(load_recipe(write_recipe(tmp_path / "merged", str(tiny_checkpoint), sts_csv,
                                                   lora=LORA | {"merge": True}, max_steps=3, save_steps=3)))
    assert (merged.final_dir / "model.safetensors").exists() and (merged.final_dir / "config.json").exists()
    assert not list(merged.final_dir.glob("adapter_*"))
    assert not any(".lora_" in key for key in load_file(merged.final_dir / "model.safetensors"))
    assert (merged.final_dir / "README.md").exists()
    # The checkpoints keep the adapter, so that --resume continues it.
    assert (tmp_path / "merged" / "run" / "checkpoints" / "checkpoint-0000003" / "model" / "adapter_config.json").exists()

    expected = reference_embeddings(adapter.final_dir)
    assert float((reference_embeddings(merged.final_dir) - expected).abs().max()) < 1e-5
    assert float((load_model(merged.final_dir).encode(TEXTS) - expected).abs().max()) < 1e-5


def test_the_card_says_how_the_adapter_was_trained_and_whether_it_is_merged(tmp_path, tiny_checkpoint, sts_csv):
    adapter = run_training(load_recipe(write_recipe(tmp_path / "adapter", str(tiny_checkpoint), sts_csv, max_steps=1)))
    AcceleratorState._reset_state(reset_partial_state=True)
    merged = run_training(load_recipe(write_recipe(tmp_path / "merged", str(tiny_checkpoint), sts_csv, max_steps=1,
                                                   lora={"r": 2, "alpha": 6, "target_modules": ["query", "key"],
                                                         "merge": True})))
    adapter_card = ModelCard.load(adapter.final_dir / "README.md")
    assert "lora" in adapter_card.data.tags
    assert ("| Fine-tuning | LoRA adapter (r 4, alpha 8, dropout 0.1) on `query`, `value`, the base "
            "model's own weights frozen; saved as the adapter alone") in adapter_card.content
    merged_card = ModelCard.load(merged.final_dir / "README.md").content
    assert ("LoRA adapter (r 2, alpha 6, dropout 0) on `key`, `query`, the base model's own weights frozen; saved "
            "merged into the base model's weights: a plain model, loadable without peft") in merged_card
    # A model trained in full says nothing of adapters.
    assert "LoRA" not in str(dense_sections(load_model(tiny_checkpoint), "tiny-bert", ["sts"]))


def test_an_adapter_run_resumed_from_a_checkpoint_ends_exactly_like_an_uninterrupted_one(
        tmp_path, tiny_checkpoint_with_dropout, sts_csv):
    """Dropout in the encoder and in the adapter, so the RNG state must be restored along with the adapter, the
    optimizer, the schedule and the data position."""
    settings = {"save_steps": 4, "max_steps": 10, "warmup_ratio": 0.2, "epochs": 3}
    base = str(tiny_checkpoint_with_dropout)
    run_training(load_recipe(write_recipe(tmp_path / "a", base, sts_csv, **settings)))
    AcceleratorState._reset_state(reset_partial_state=True)
    interrupted = load_recipe(write_recipe(tmp_path / "b", base, sts_csv, **settings))
    with pytest.raises(KeyboardInterrupt):
        run_training(interrupted, observer=StopAt(step=7))  # after the checkpoint at step 4, mid-epoch
    AcceleratorState._reset_state(reset_partial_state=True)
    run_training(interrupted, resume=True)

    expected, resumed = train_losses(tmp_path / "a" / "run"), train_losses(tmp_path / "b" / "run")
    assert sorted(resumed) == list(range(1, 11))
    for step in expected:
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    weights_a = load_file(tmp_path / "a" / "run" / "final" / "adapter_model.safetensors")
    weights_b = load_file(tmp_path / "b" / "run" / "final" / "adapter_model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=1e-5, atol=1e-6, msg=name)


def test_an_adapter_on_a_mirrored_hub_model_names_the_hub_id_not_the_local_copy(tmp_path, tiny_checkpoint, sts_csv,
                                                                               monkeypatch):
    mirror = tmp_path / "mirror.yaml"
    mirror.write_text(yaml.safe_dump({"models": {"org/tiny-bert": str(tiny_checkpoint)}}), encoding="utf-8")
    monkeypatch.setenv("EMBEDTRAIN_MIRROR", str(mirror))
    result = run_training(load_recipe(write_recipe(tmp_path, "org/tiny-bert", sts_csv, max_steps=2)))
    config = json.loads((result.final_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "org/tiny-bert"
    for path in result.final_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".txt"):
            assert str(tiny_checkpoint) not in path.read_text(encoding="utf-8"), path
    # embedtrain reads the hub id through the mirror again, and gets the trained embeddings.
    reloaded = load_model(result.final_dir)
    assert reloaded[0].adapter is not None
    merged_elsewhere = tmp_path / "copy"
    import shutil

    shutil.copytree(result.final_dir, merged_elsewhere)
    config["base_model_name_or_path"] = str(tiny_checkpoint)  # what the reference needs without the hub
    (merged_elsewhere / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert float((reference_embeddings(merged_elsewhere) - reloaded.encode(TEXTS)).abs().max()) < 1e-5


def test_the_dry_run_counts_the_adapter_as_trainable_and_the_encoder_as_frozen(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, str(tiny_checkpoint), sts_csv, lora={"r": 4, "target_modules": ["query", "value"]})
    result = runner.invoke(app, ["train", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output
    # 2 layers x (query, value) x (A: 4 x 32 + B: 32 x 4); the tiny BERT's 26,656 weights stay frozen.
    row = next(line for line in result.output.splitlines() if "(Transformer)" in line)
    assert "1,024" in row and "26,656" in row


def test_without_peft_a_lora_recipe_exits_2_naming_the_extra(tmp_path, tiny_checkpoint, sts_csv, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError, as when it is not installed
    recipe = write_recipe(tmp_path, str(tiny_checkpoint), sts_csv)
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "model.lora" in result.output and "embedtrain[lora]" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_without_peft_a_saved_adapter_model_cannot_load_and_says_why(tmp_path, tiny_checkpoint, sts_csv, monkeypatch):
    result = run_training(load_recipe(write_recipe(tmp_path, str(tiny_checkpoint), sts_csv, max_steps=1)))
    monkeypatch.setitem(sys.modules, "peft", None)
    evaluation = runner.invoke(app, ["eval", str(result.final_dir), "--evaluator", "sts", "--data", str(sts_csv)])
    assert evaluation.exit_code == ExitCode.INVALID_INPUT, evaluation.output
    assert "adapter_config.json" in evaluation.output and "embedtrain[lora]" in evaluation.output


@pytest.mark.parametrize(("model", "message"), [
    ({"kind": "sparse"}, "dense models (kind: dense) only"),
    ({"kind": "cross_encoder"}, "dense models (kind: dense) only"),
    ({"static": {"embedding_dim": 16}}, "no transformer to adapt"),
    ({"lora": {"r": 0}}, "greater than 0"),
    ({"lora": {"target_modules": ["nonexistent_layer"]}}, "The linear layers of"),
])
def test_lora_settings_a_model_cannot_use_exit_2_at_model_lora(tmp_path, tiny_checkpoint, sts_csv, model, message):
    recipe = write_recipe(tmp_path, str(tiny_checkpoint), sts_csv)
    content = yaml.safe_load(recipe.read_text())
    content["model"] |= model
    recipe.write_text(yaml.safe_dump(content), encoding="utf-8")
    result = runner.invoke(app, ["train", str(recipe), "--dry-run"])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "lora" in result.output and message in " ".join(result.output.split()), result.output


@pytest.mark.parametrize("name", CASES)
def test_every_dense_loss_family_trains_the_adapter(name, tmp_path, tiny_checkpoint, triplet_csv):
    """The losses that reach into the loop in their own way (GradCache's backward hook, a guide model, a decoder
    of its own, ...), with packing on: gradients reach the adapter, whose B matrices start at zero, and the final
    model is the adapter. (TSDAE's decoder cannot be tied to an adapted encoder: a recipe error, tested below.)"""
    loss, columns, ignored = CASES[name]
    if "GIST" in loss["type"]:
        loss = loss | {"guide": str(tiny_checkpoint)}
    if loss["type"] == "DenoisingAutoEncoderLoss":
        loss = loss | {"tie_encoder_decoder": False, "decoder_name_or_path": str(tiny_checkpoint)}
    dataset = {"source": str(triplet_csv), "columns": columns, "ignore_columns": ignored}
    recipe = {
        "model": {"base": str(tiny_checkpoint), "lora": {"r": 2}},
        "losses": {"main": loss},
        "datasets": {"train": {"triplets": dataset}},
        "training": {"output_dir": str(tmp_path / "run"), "batch_size": 6, "max_steps": 2, "learning_rate": 1e-2,
                     "eval_before_training": False},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    result = run_training(load_recipe(path, []))
    weights = load_file(result.final_dir / "adapter_model.safetensors")
    assert not (result.final_dir / "model.safetensors").exists()
    b_matrices = [value for key, value in weights.items() if ".lora_B." in key]
    assert b_matrices and all(bool(value.abs().sum() > 0) for value in b_matrices)


def test_a_tsdae_decoder_tied_to_an_adapted_encoder_is_a_recipe_error(tmp_path, tiny_checkpoint, sts_csv):
    recipe = write_recipe(tmp_path, str(tiny_checkpoint), sts_csv)
    content = yaml.safe_load(recipe.read_text())
    content["losses"]["main"] = {"type": "DenoisingAutoEncoderLoss"}
    recipe.write_text(yaml.safe_dump(content), encoding="utf-8")
    result = runner.invoke(app, ["train", str(recipe), "--dry-run"])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    output = " ".join(result.output.split())
    assert "losses.main.tie_encoder_decoder" in output and "LoRA-adapted encoder" in output


def test_training_an_adapter_model_again_continues_its_adapter(tmp_path, tiny_checkpoint, sts_csv):
    first = run_training(load_recipe(write_recipe(tmp_path / "first", str(tiny_checkpoint), sts_csv, max_steps=2)))
    AcceleratorState._reset_state(reset_partial_state=True)
    recipe = write_recipe(tmp_path / "second", str(first.final_dir), sts_csv, max_steps=2)
    content = yaml.safe_load(recipe.read_text())
    with_lora = runner.invoke(app, ["train", str(recipe), "--dry-run"])  # a second adapter on top: refused
    assert with_lora.exit_code == ExitCode.INVALID_INPUT and "already carries a LoRA adapter" in with_lora.output

    del content["model"]["lora"]
    recipe.write_text(yaml.safe_dump(content), encoding="utf-8")
    second = run_training(load_recipe(recipe))
    config = json.loads((second.final_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_checkpoint)  # still the base, not the first adapter
    before = load_file(first.final_dir / "adapter_model.safetensors")
    after = load_file(second.final_dir / "adapter_model.safetensors")
    assert before.keys() == after.keys() and any(not torch.equal(before[key], after[key]) for key in before)
    assert float((reference_embeddings(second.final_dir) - load_model(second.final_dir).encode(TEXTS)).abs().max()) < 1e-5


def test_merge_applies_to_the_best_checkpoint_copied_as_the_final_model(tmp_path, tiny_checkpoint, sts_csv):
    path = write_recipe(tmp_path, str(tiny_checkpoint), sts_csv, lora=LORA | {"merge": True}, max_steps=4,
                        save_steps=2, eval_steps=2, load_best_model_at_end=True,
                        metric_for_best_model="sts-dev_spearman_cosine")
    content = yaml.safe_load(path.read_text())
    content["evaluators"] = [{"type": "sts", "name": "sts-dev", "source": str(sts_csv)}]
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    result = run_training(load_recipe(path))
    assert (result.final_dir / "model.safetensors").exists() and not list(result.final_dir.glob("adapter_*"))
    final = load_model(result.final_dir).encode(TEXTS)
    checkpoints = sorted((tmp_path / "run" / "checkpoints").iterdir())
    differences = [float((load_model(checkpoint / "model").encode(TEXTS) - final).abs().max())
                   for checkpoint in checkpoints]
    assert min(differences) < 1e-5, differences  # the final model is one checkpoint's adapter, merged

"""Checks against the built model, before any training step: each is a RecipeError (exit 2) naming the recipe key
and the fix, where the run would otherwise crash hours in or train silently wrong.

Proven here:
- `model.max_seq_length` past the position embeddings (100000 on a 64-position BERT) stops `train` with exit 2
  before anything is written; RoBERTa-style models lose padding_idx + 1 positions;
- a prompt that leaves no room for the text names `model.prompts.<name>`;
- CLS pooling on a tokenizer that puts no special token first names `model.pooling`, and so does last-token pooling
  on one that appends no EOS (or other special) token;
- a checkpoint saved in bf16 trains with float32 weights unless `model.dtype` says otherwise, while loading it for
  inference keeps its dtype, as the reference does;
- `model.truncate_dim` and Matryoshka dims past the embedding size name their keys.
"""

import pytest
import yaml
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.engine.run import run_training
from embedtrain.errors import ExitCode, RecipeError
from embedtrain.models.build import build_model
from embedtrain.recipe.build import build_losses
from embedtrain.recipe.checks import built_model_problems, position_limit
from embedtrain.recipe.loading import load_recipe

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def write_recipe(tmp_path, checkpoint, sts_csv, model=None, loss=None):
    recipe = {
        "model": {"base": str(checkpoint)} | (model or {}),
        "losses": {"main": loss or {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 1, "batch_size": 4},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def training_error(path) -> str:
    with pytest.raises(RecipeError) as raised:
        run_training(load_recipe(path))
    assert raised.value.exit_code == ExitCode.INVALID_INPUT
    return str(raised.value)


def test_max_seq_length_past_the_position_embeddings_stops_train_with_exit_2(tmp_path, tiny_checkpoint, sts_csv):
    path = write_recipe(tmp_path, tiny_checkpoint, sts_csv, model={"max_seq_length": 100000})

    result = CliRunner().invoke(app, ["train", str(path)])

    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "model.max_seq_length: 100000 exceeds the 64 positions" in output
    assert "set model.max_seq_length to at most 64" in output
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # nothing trained


def test_max_seq_length_within_the_positions_trains(tmp_path, tiny_checkpoint, sts_csv):
    result = run_training(load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, model={"max_seq_length": 64})))

    assert result.steps == 1


def test_roberta_positions_start_after_the_padding_index():
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    small = {"vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 16}
    assert position_limit(RobertaModel(RobertaConfig(**small, max_position_embeddings=66, pad_token_id=1))) == 64
    assert position_limit(BertModel(BertConfig(**small, max_position_embeddings=64))) == 64


def test_prompt_without_room_for_the_text_names_its_key(tmp_path, tiny_checkpoint, sts_csv):
    prompt = "represent this sentence for searching relevant passages: "
    path = write_recipe(tmp_path, tiny_checkpoint, sts_csv, model={"max_seq_length": 8, "prompts": {"query": prompt}})

    error = training_error(path)

    assert "model.prompts.query: the prompt takes" in error
    assert "of model.max_seq_length 8, leaving no room for the text; shorten the prompt or raise model.max_seq_length" in error


def test_cls_pooling_needs_a_special_token_first(tmp_path, tiny_checkpoint, sts_csv):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, model={"pooling": "cls"}))
    model = build_model(recipe.model)
    assert built_model_problems(recipe, model) == []  # BERT's tokenizer puts [CLS] first
    words = Tokenizer(models.WordLevel({"[UNK]": 0, "[PAD]": 1, "a": 2}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()  # no post-processor: no special tokens added
    model.input_module.tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]")

    problems = built_model_problems(recipe, model)

    assert len(problems) == 1
    assert problems[0].startswith("model.pooling: cls pooling embeds the first token, but")
    assert "use mean or lasttoken pooling, or a tokenizer that adds a CLS token" in problems[0]


def test_last_token_pooling_needs_a_token_appended_last(tmp_path, tiny_checkpoint, sts_csv):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, model={"pooling": "lasttoken"}))
    model = build_model(recipe.model)
    assert built_model_problems(recipe, model) == []  # BERT's tokenizer ends a text with [SEP]
    vocabulary = {"[UNK]": 0, "<eos>": 1, "a": 2}
    words = Tokenizer(models.WordLevel(vocabulary, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()  # no post-processor: nothing appended
    model.input_module.tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", eos_token="<eos>")

    problems = built_model_problems(recipe, model)

    assert len(problems) == 1
    assert problems[0].startswith("model.pooling: lasttoken pooling embeds the last token, but")
    assert "appends no EOS token to a text, so each text would be embedded by its last word" in problems[0]
    words.post_processor = processors.TemplateProcessing(single="$A <eos>", special_tokens=[("<eos>", 1)])
    model.input_module.tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]", eos_token="<eos>")
    assert built_model_problems(recipe, model) == []


def test_a_bf16_checkpoint_trains_in_float32_weights_and_loads_for_inference_in_bf16(tmp_path, tiny_checkpoint,
                                                                                      sts_csv):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from embedtrain.models import load_model

    bf16 = tmp_path / "bf16"
    AutoModel.from_pretrained(tiny_checkpoint, dtype=torch.bfloat16).save_pretrained(bf16)
    AutoTokenizer.from_pretrained(tiny_checkpoint).save_pretrained(bf16)

    trained = build_model(load_recipe(write_recipe(tmp_path, bf16, sts_csv)).model)

    assert {weight.dtype for weight in trained.parameters()} == {torch.float32}
    assert {weight.dtype for weight in load_model(bf16).parameters()} == {torch.bfloat16}


def test_truncate_dim_past_the_embedding_size_names_its_key(tmp_path, tiny_checkpoint, sts_csv):
    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, model={"truncate_dim": 64}))

    with pytest.raises(RecipeError, match=r"^model\.truncate_dim: 64 exceeds the model's embedding dimension 32; "
                                          r"choose a smaller value"):
        build_model(recipe.model)


def test_matryoshka_dims_past_the_embedding_size_name_their_key(tmp_path, tiny_checkpoint, sts_csv):
    loss = {"type": "MatryoshkaLoss", "matryoshka_dims": [64, 16], "loss": {"type": "CoSENTLoss"}}
    recipe = load_recipe(write_recipe(tmp_path, tiny_checkpoint, sts_csv, loss=loss))

    with pytest.raises(RecipeError) as raised:
        build_losses(recipe, build_model(recipe.model))

    assert str(raised.value) == ("losses.main: matryoshka_dims: [64] exceed the model's embedding dimension 32; "
                                 "use dims of at most 32")

"""Model folders are interchangeable with sentence-transformers (ST 6.2 is the oracle).

Proven here:
- a model embedtrain builds and saves (every pooling mode, mean+max concatenated, Dense with tanh and
  identity, Normalize, prompts, a short max_seq_length) loads in ST and embeds texts of mixed lengths
  exactly as embedtrain does (max |delta| < 1e-5), and the files are the legacy layout (legacy module type
  strings, legacy pooling booleans, config_sentence_transformers.json with prompts);
- a model ST 6.2 builds and saves (its v5.4+ layout) loads in embedtrain with the same embeddings,
  prompts, similarity function and max_seq_length; so do a plain HF checkpoint and the real
  all-MiniLM-L6-v2 folder (legacy layout, slow);
- embedtrain save -> embedtrain load is lossless, and truncation at max_seq_length is the same in both
  libraries;
- folders that are not usable models raise ModelLoadError naming the path.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers.asserts import assert_same_embeddings
from helpers.embedding import build, read_json, st_encode
from helpers.texts import TEXTS
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense as STDense
from sentence_transformers.sentence_transformer.modules import Normalize as STNormalize
from sentence_transformers.sentence_transformer.modules import Pooling as STPooling
from sentence_transformers.sentence_transformer.modules import Transformer as STTransformer

from embedtrain.errors import ModelLoadError
from embedtrain.models import load_model, save_model
from embedtrain.modules import Dense, Normalize, Pooling, Transformer

SHAPES = {
    "mean": {"pooling": "mean"},
    "cls": {"pooling": "cls"},
    "max": {"pooling": "max"},
    "mean+max": {"pooling": ["mean", "max"]},
    "weightedmean": {"pooling": "weightedmean"},
    "lasttoken": {"pooling": "lasttoken"},
    "mean_sqrt_len_tokens": {"pooling": "mean_sqrt_len_tokens"},
    "dense-tanh+normalize": {"pooling": "mean", "dense": {"out_features": 16, "activation": "tanh"}, "normalize": True},
    "dense-identity-nobias": {"pooling": "cls", "dense": {"out_features": 8, "activation": "identity", "bias": False}},
    "normalize+prompts": {"pooling": "mean", "normalize": True, "prompts": {"query": "query: "},
                          "default_prompt_name": "query", "similarity_fn_name": "dot"},
}


pytestmark = pytest.mark.usefixtures("one_thread")


# embedtrain -> sentence-transformers


@pytest.mark.parametrize("settings", SHAPES.values(), ids=SHAPES.keys())
def test_embedtrain_saved_model_loads_in_st_with_identical_embeddings(tiny_checkpoint, tmp_path, settings):
    model = build(tiny_checkpoint, **settings)
    save_model(model, tmp_path / "model")

    st = SentenceTransformer(str(tmp_path / "model"), device="cpu")

    assert [type(module).__name__ for module in st] == [type(module).__name__ for module in model]
    assert st.get_embedding_dimension() == model.embedding_dimension
    assert_same_embeddings(st_encode(st, TEXTS), model.encode(TEXTS))


def test_embedtrain_prompts_are_used_by_st(tiny_checkpoint, tmp_path):
    model = build(tiny_checkpoint, prompts={"query": "query: ", "passage": "passage: "})
    save_model(model, tmp_path / "model")

    st = SentenceTransformer(str(tmp_path / "model"), device="cpu")

    assert st.prompts == {"query": "query: ", "passage": "passage: ", "document": ""}
    assert st.default_prompt_name is None
    for name in ("query", "passage"):
        assert_same_embeddings(st_encode(st, TEXTS, prompt_name=name), model.encode(TEXTS, prompt_name=name))
    # The prompt really changes the embedding, so the comparison above is not vacuous.
    assert (model.encode(TEXTS, prompt_name="query") - model.encode(TEXTS)).abs().max() > 1e-3


def test_embedtrain_writes_the_legacy_layout(tiny_checkpoint, tmp_path):
    model = build(tiny_checkpoint, pooling=["mean", "max"], dense={"out_features": 16, "activation": "identity"},
                  normalize=True, prompts={"query": "query: "}, similarity_fn_name="dot", max_seq_length=24)
    folder = tmp_path / "model"
    save_model(model, folder)

    assert read_json(folder / "modules.json") == [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    assert read_json(folder / "1_Pooling" / "config.json") == {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": False,
        "pooling_mode_max_tokens": True,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    assert read_json(folder / "2_Dense" / "config.json") == {
        "in_features": 64, "out_features": 16, "bias": True, "activation_function": "torch.nn.modules.linear.Identity",
    }
    assert set(load_file(str(folder / "2_Dense" / "model.safetensors"))) == {"linear.weight", "linear.bias"}
    assert (folder / "3_Normalize").is_dir()
    assert read_json(folder / "sentence_bert_config.json") == {"max_seq_length": 24, "do_lower_case": False}
    assert read_json(folder / "tokenizer_config.json")["model_max_length"] == 24
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()

    settings = read_json(folder / "config_sentence_transformers.json")
    assert settings["model_type"] == "SentenceTransformer"
    assert settings["prompts"] == {"query": "query: ", "document": ""}
    assert settings["default_prompt_name"] is None
    assert settings["similarity_fn_name"] == "dot"
    assert settings["__version__"]["sentence_transformers"] == "5.1.2"

    st = SentenceTransformer(str(folder), device="cpu")
    assert st.prompts == {"query": "query: ", "document": ""}
    assert st.similarity_fn_name == "dot"
    assert st.max_seq_length == 24


# sentence-transformers -> embedtrain

ST_SHAPES = {
    "mean": {"pooling": "mean"},
    "cls+mean, dense tanh, normalize": {"pooling": ("cls", "mean"), "dense": torch.nn.Tanh, "normalize": True},
    "lasttoken, dense identity": {"pooling": "lasttoken", "dense": torch.nn.Identity},
    "weightedmean, normalize": {"pooling": "weightedmean", "normalize": True},
    "max+mean_sqrt_len_tokens": {"pooling": ("max", "mean_sqrt_len_tokens")},
}


def build_st(checkpoint: Path, pooling, dense=None, normalize=False, **model_kwargs) -> SentenceTransformer:
    torch.manual_seed(0)
    transformer = STTransformer(str(checkpoint), max_seq_length=model_kwargs.pop("max_seq_length", None))
    pool = STPooling(32, pooling)
    modules = [transformer, pool]
    if dense is not None:
        modules.append(STDense(pool.get_embedding_dimension(), 12, activation_function=dense()))
    if normalize:
        modules.append(STNormalize())
    return SentenceTransformer(modules=modules, device="cpu", **model_kwargs)


@pytest.mark.parametrize("settings", ST_SHAPES.values(), ids=ST_SHAPES.keys())
def test_st_saved_model_loads_in_embedtrain_with_identical_embeddings(tiny_checkpoint, tmp_path, settings):
    st = build_st(tiny_checkpoint, **settings)
    st.save(str(tmp_path / "model"))
    assert "sentence_transformers.base.modules" in (tmp_path / "model" / "modules.json").read_text()  # v5.4+ layout

    model = load_model(tmp_path / "model")

    assert [type(module).__name__ for module in model] == [type(module).__name__ for module in st]
    assert model.embedding_dimension == st.get_embedding_dimension()
    assert_same_embeddings(st_encode(st, TEXTS), model.encode(TEXTS))


def test_st_saved_settings_are_read_by_embedtrain(tiny_checkpoint, tmp_path):
    st = build_st(tiny_checkpoint, "mean", normalize=True, max_seq_length=16, prompts={"query": "query: "},
                  default_prompt_name="query", similarity_fn_name="dot")
    st.save(str(tmp_path / "model"))

    model = load_model(tmp_path / "model")

    assert model.max_seq_length == 16
    assert model.prompts == {"query": "query: ", "document": ""}
    assert model.default_prompt_name == "query"
    assert model.similarity_fn_name == "dot"
    # Both apply the default prompt and truncate at 16 tokens.
    assert_same_embeddings(st_encode(st, TEXTS), model.encode(TEXTS))
    assert_same_embeddings(st_encode(st, TEXTS, prompt="passage: "), model.encode(TEXTS, prompt="passage: "))


def test_plain_hf_checkpoint_gets_mean_pooling_like_st(tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    st = SentenceTransformer(str(tiny_checkpoint), device="cpu")

    assert [type(module) for module in model] == [Transformer, Pooling]
    assert model[1].modes == ("mean",)
    assert_same_embeddings(st_encode(st, TEXTS), model.encode(TEXTS))


@pytest.mark.slow
def test_real_minilm_legacy_folder_loads_with_identical_embeddings(minilm_path):
    model = load_model(minilm_path)
    st = SentenceTransformer(str(minilm_path), device="cpu")

    assert [type(module) for module in model] == [Transformer, Pooling, Normalize]
    assert model.max_seq_length == st.max_seq_length == 256
    texts = TEXTS + ["A man is eating food.", "The new movie is awesome. " * 80]  # the last one is truncated
    assert_same_embeddings(st_encode(st, texts), model.encode(texts))


# embedtrain -> embedtrain


@pytest.mark.parametrize("settings", SHAPES.values(), ids=SHAPES.keys())
def test_round_trip_is_lossless(tiny_checkpoint, tmp_path, settings):
    model = build(tiny_checkpoint, max_seq_length=40, **settings)
    save_model(model, tmp_path / "model")

    loaded = load_model(tmp_path / "model")

    assert [type(module) for module in loaded] == [type(module) for module in model]
    assert loaded.max_seq_length == 40
    assert loaded.prompts == model.prompts
    assert loaded.default_prompt_name == model.default_prompt_name
    assert loaded.similarity_fn_name == model.similarity_fn_name
    for original, reloaded in zip(model, loaded):
        if isinstance(original, Pooling):
            assert (reloaded.modes, reloaded.include_prompt) == (original.modes, original.include_prompt)
        if isinstance(original, Dense):
            assert (reloaded.activation, reloaded.bias, reloaded.out_features) == (
                original.activation, original.bias, original.out_features)
    assert_same_embeddings(model.encode(TEXTS), loaded.encode(TEXTS))


def test_truncation_at_max_seq_length_is_the_same_in_both_libraries(tiny_checkpoint, tmp_path):
    model = build(tiny_checkpoint, max_seq_length=8)
    save_model(model, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    st = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    # [CLS] + 6 words + [SEP] fill the 8 tokens: whatever follows is cut.
    texts = ["a man is playing the guitar in the park with a dog",
             "a man is playing the guitar on the beach with two old horses and a cat",
             "a man is playing the guitar",
             "a man"]

    assert model.max_seq_length == loaded.max_seq_length == st.max_seq_length == 8
    expected = model.encode(texts)
    assert_same_embeddings(expected, loaded.encode(texts))
    assert_same_embeddings(expected, st_encode(st, texts))
    assert_same_embeddings(expected[0:1], expected[1:2])  # truncated to the same 8 tokens
    assert_same_embeddings(expected[0:1], expected[2:3])
    assert (expected[0] - expected[3]).abs().max() > 1e-3


def test_max_seq_length_argument_overrides_the_saved_one(tiny_checkpoint, tmp_path):
    save_model(build(tiny_checkpoint, max_seq_length=40), tmp_path / "model")

    assert load_model(tmp_path / "model", max_seq_length=8).max_seq_length == 8


# Folders that are not usable models


def write_modules_json(folder: Path, entries: list[dict]) -> None:
    (folder / "modules.json").write_text(json.dumps(entries), encoding="utf-8")


@pytest.fixture
def saved_model(tiny_checkpoint, tmp_path) -> Path:
    """An embedtrain model folder (Transformer, Pooling, Normalize) that each test may break."""
    save_model(build(tiny_checkpoint, normalize=True), tmp_path / "model")
    return tmp_path / "model"


def break_with_custom_module(folder: Path) -> None:
    entries = read_json(folder / "modules.json")
    entries[1]["type"] = "my_package.pooling.FancyPooling"
    write_modules_json(folder, entries)


def break_with_unsupported_st_module(folder: Path) -> None:
    entries = read_json(folder / "modules.json")
    entries[1]["type"] = "sentence_transformers.models.LSTM"
    write_modules_json(folder, entries)


def break_with_sparse_model_type(folder: Path) -> None:
    settings = read_json(folder / "config_sentence_transformers.json")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(settings | {"model_type": "SparseEncoder"}))


def break_with_unsupported_pooling_order(folder: Path) -> None:
    # ST 6.2 concatenates in the order given; embedtrain only supports the canonical order.
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": 32, "pooling_mode": ["mean", "cls"], "include_prompt": True}))


def break_with_unknown_dense_activation(folder: Path) -> None:
    dense = Dense(32, 4, activation="tanh")
    dense.save(folder / "3_Dense")
    config = read_json(folder / "3_Dense" / "config.json") | {"activation_function": "my_package.Swish"}
    (folder / "3_Dense" / "config.json").write_text(json.dumps(config))
    write_modules_json(folder, read_json(folder / "modules.json") + [
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}])


def break_modules_json_syntax(folder: Path) -> None:
    (folder / "modules.json").write_text('[{"idx": 0, "path": ""', encoding="utf-8")


def break_by_removing_module_folder(folder: Path) -> None:
    shutil.rmtree(folder / "1_Pooling")


BROKEN_FOLDERS = {
    "custom module type": (break_with_custom_module, "custom code"),
    "unsupported ST module": (break_with_unsupported_st_module, "not supported"),
    "sparse model type": (break_with_sparse_model_type, "SparseEncoder"),
    "pooling order": (break_with_unsupported_pooling_order, "order"),
    "dense activation": (break_with_unknown_dense_activation, "activation_function"),
    "modules.json not JSON": (break_modules_json_syntax, "modules.json"),
    "module folder missing": (break_by_removing_module_folder, "1_Pooling"),
}


@pytest.mark.parametrize(("damage", "fragment"), BROKEN_FOLDERS.values(), ids=BROKEN_FOLDERS.keys())
def test_unusable_model_folder_raises_model_load_error_naming_it(saved_model, damage, fragment):
    damage(saved_model)

    with pytest.raises(ModelLoadError) as raised:
        load_model(saved_model)

    assert str(saved_model) in str(raised.value)
    assert fragment in str(raised.value)


def test_missing_directory_raises_model_load_error(tmp_path):
    missing = tmp_path / "no-such-model"

    with pytest.raises(ModelLoadError, match="does not exist") as raised:
        load_model(missing)

    assert str(missing) in str(raised.value)


def test_file_instead_of_directory_raises_model_load_error(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"")

    with pytest.raises(ModelLoadError, match="is a file") as raised:
        load_model(file)

    assert str(file) in str(raised.value)


def test_directory_without_model_files_raises_model_load_error(tmp_path):
    (tmp_path / "README.md").write_text("not a model")

    with pytest.raises(ModelLoadError, match=r"modules\.json.*config\.json") as raised:
        load_model(tmp_path)

    assert str(tmp_path) in str(raised.value)


def test_unknown_hub_id_offline_raises_model_load_error():
    with pytest.raises(ModelLoadError, match="no-such-org/no-such-embedder") as raised:
        load_model("no-such-org/no-such-embedder")

    assert "Pass a local model directory instead" in str(raised.value)

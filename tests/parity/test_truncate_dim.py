"""Matryoshka at inference: `truncate_dim` is saved with the model, honoured by encode, and read both ways with the reference."""

import pytest
import torch
from helpers.asserts import assert_same_embeddings
from helpers.embedding import build, read_json, st_encode
from helpers.texts import TEXTS
from sentence_transformers import SentenceTransformer

from embedtrain.errors import RecipeError
from embedtrain.models import load_model, save_model


def test_truncate_dim_is_saved_and_encode_keeps_the_leading_dimensions(tiny_checkpoint, tmp_path):
    full = build(tiny_checkpoint).encode(TEXTS)
    model = build(tiny_checkpoint, truncate_dim=8)
    assert_same_embeddings(full[:, :8], model.encode(TEXTS))
    save_model(model, tmp_path / "model")
    assert read_json(tmp_path / "model" / "config_sentence_transformers.json")["truncate_dim"] == 8

    st = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert st.truncate_dim == 8
    assert_same_embeddings(st_encode(st, TEXTS), load_model(tmp_path / "model").encode(TEXTS))


def test_truncate_dim_saved_by_the_reference_is_honoured(tiny_checkpoint, tmp_path):
    st = SentenceTransformer(str(tiny_checkpoint), device="cpu", truncate_dim=12)
    st.save(str(tmp_path / "model"))
    model = load_model(tmp_path / "model")
    assert model.truncate_dim == 12 and model.encode(TEXTS).shape == (len(TEXTS), 12)
    assert_same_embeddings(st_encode(st, TEXTS), model.encode(TEXTS))


def test_no_truncate_dim_key_unless_set(tiny_checkpoint, tmp_path):
    save_model(build(tiny_checkpoint), tmp_path / "model")
    assert "truncate_dim" not in read_json(tmp_path / "model" / "config_sentence_transformers.json")


def test_truncate_dim_larger_than_the_embedding_is_a_recipe_error(tiny_checkpoint):
    with pytest.raises(RecipeError, match="model.truncate_dim: 64 exceeds"):
        build(tiny_checkpoint, truncate_dim=64)
    assert torch.is_tensor(build(tiny_checkpoint, truncate_dim=32).encode(TEXTS[:1]))

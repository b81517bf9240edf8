"""StaticEmbedding: saved and loaded in the reference's layout with identical embeddings both ways, built from a
recipe (random or from the base model's input embeddings), and trained end to end."""

import json

import pytest
import torch
import yaml
from helpers.asserts import assert_same_embeddings
from helpers.embedding import build, st_encode
from helpers.texts import TEXTS
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import StaticEmbedding as STStaticEmbedding
from tokenizers import Tokenizer

from embedtrain.engine.run import run_training
from embedtrain.errors import RecipeError
from embedtrain.losses import LOSSES, build_loss
from embedtrain.models import load_model, save_model
from embedtrain.modules import StaticEmbedding
from embedtrain.recipe.loading import load_recipe


def test_embedtrain_static_model_loads_in_the_reference_with_identical_embeddings(tiny_checkpoint, tmp_path):
    torch.manual_seed(0)
    model = build(tiny_checkpoint, static={"embedding_dim": 24}, normalize=True)
    assert [type(module).__name__ for module in model] == ["StaticEmbedding", "Normalize"]
    save_model(model, tmp_path / "model")
    modules = json.loads((tmp_path / "model" / "modules.json").read_text())
    assert modules[0] == {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.StaticEmbedding"}

    st = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert isinstance(st[0], STStaticEmbedding) and st.get_embedding_dimension() == 24
    assert_same_embeddings(st_encode(st, TEXTS), model.encode(TEXTS))
    assert_same_embeddings(st_encode(st, TEXTS), load_model(tmp_path / "model").encode(TEXTS))


def test_reference_static_model_loads_in_embedtrain_with_identical_embeddings(tiny_checkpoint, tmp_path):
    tokenizer = Tokenizer.from_file(str(tiny_checkpoint / "tokenizer.json"))
    weights = torch.randn(tokenizer.get_vocab_size(), 16, generator=torch.Generator().manual_seed(1))
    st = SentenceTransformer(modules=[STStaticEmbedding(tokenizer, embedding_weights=weights)], device="cpu")
    st.save(str(tmp_path / "model"))

    model = load_model(tmp_path / "model")
    assert isinstance(model[0], StaticEmbedding)
    assert_same_embeddings(st_encode(st, TEXTS), model.encode(TEXTS))


def test_static_model_starts_from_the_base_models_input_embeddings(tiny_checkpoint):
    transformer_model = build(tiny_checkpoint)
    model = build(tiny_checkpoint, static={})
    token_embeddings = transformer_model[0].auto_model.get_input_embeddings().weight
    torch.testing.assert_close(model[0].embedding.weight, token_embeddings)
    features = model.tokenize(["a man plays guitar"])
    expected = token_embeddings[features["input_ids"]].mean(dim=0)
    torch.testing.assert_close(model.encode(["a man plays guitar"])[0], expected)


@pytest.mark.parametrize("loss", [{"type": "CachedMultipleNegativesRankingLoss"}, {"type": "MegaBatchMarginLoss"},
                                  {"type": "AdaptiveLayerLoss", "loss": {"type": "MultipleNegativesRankingLoss"}}])
def test_losses_that_need_a_transformer_refuse_a_static_model(tiny_checkpoint, loss):
    model = build(tiny_checkpoint, static={"embedding_dim": 8})
    with pytest.raises(RecipeError, match=loss["type"]):
        build_loss(LOSSES[loss["type"]].params_model(**loss), model)


def test_static_model_with_pooling_is_a_recipe_error(tiny_checkpoint):
    with pytest.raises(RecipeError, match="model.pooling"):
        build(tiny_checkpoint, static={"embedding_dim": 8}, pooling="cls")


def test_a_saved_static_model_trains_further_and_still_loads_in_the_reference(tiny_checkpoint, triplet_csv, tmp_path,
                                                                              fresh_accelerate_state):
    """A static model as `model.base` (e.g. a static-nli run's output, trained on): its data checks read no
    transformer (it has none, and truncates nothing), its weights train, and the result is still the reference's."""
    torch.manual_seed(0)
    save_model(build(tiny_checkpoint, static={"embedding_dim": 16}), tmp_path / "static")
    recipe = {"model": {"base": str(tmp_path / "static")},
              "losses": {"mnrl": {"type": "MultipleNegativesRankingLoss"}},
              "datasets": {"train": {"triplets": {"source": str(triplet_csv)}}},
              "training": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "batch_size": 4, "learning_rate": 0.1,
                           "eval_before_training": False}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    run_training(load_recipe(tmp_path / "recipe.yaml"))

    trained = load_model(tmp_path / "run" / "final")
    assert isinstance(trained[0], StaticEmbedding)
    before = load_model(tmp_path / "static")[0].embedding.weight
    assert not torch.equal(trained[0].embedding.weight, before)
    st = SentenceTransformer(str(tmp_path / "run" / "final"), device="cpu")
    assert_same_embeddings(st_encode(st, TEXTS), trained.encode(TEXTS))

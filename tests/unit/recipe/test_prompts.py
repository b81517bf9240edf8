"""Training prompts: named in model.prompts (so they are saved with the model), chosen per dataset and input,
prepended while training, optionally excluded from pooling, and the same at inference in both libraries."""

import json

import pytest
import torch
import yaml
from sentence_transformers import SentenceTransformer

from embedtrain.engine.run import run_training
from embedtrain.errors import RecipeError
from embedtrain.models import load_model
from embedtrain.recipe.loading import load_recipe

PROMPTS = {"query": "query: ", "document": "document: "}


def recipe_file(tmp_path, model, triplets, prompts, include_prompt=None) -> str:
    recipe = {
        "model": {"base": str(model), "prompts": PROMPTS} | ({"include_prompt": include_prompt}
                                                           if include_prompt is not None else {}),
        "losses": {"mnrl": {"type": "MultipleNegativesRankingLoss"}},
        "datasets": {"train": {"nli": {"source": str(triplets), "prompts": prompts}}},
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "batch_size": 4},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_prompts_are_prepended_per_input_and_saved(tmp_path, tiny_checkpoint, triplet_csv, fresh_accelerate_state):
    path = recipe_file(tmp_path, tiny_checkpoint, triplet_csv, {"anchor": "query", "negative": "document"},
                       include_prompt=False)
    from embedtrain.data.training_data import Collator, TrainingRows
    from embedtrain.recipe.plan import plan_data

    recipe = load_recipe(path)
    prepared = plan_data(recipe).train["nli"]
    assert prepared.prompts == ("query: ", None, "document: ")  # anchor, positive, negative_1
    model = load_model(tiny_checkpoint)
    batch = Collator(model.tokenize)(TrainingRows({"nli": prepared}).__getitems__([0, 1]))
    anchor, positive, negative = batch["features"]
    query_ids = model.tokenize(["query: "])["input_ids"][0, :-1]  # [CLS] query : (without [SEP])
    assert torch.equal(anchor["input_ids"][0, : len(query_ids)], query_ids)
    assert anchor["prompt_length"].tolist() == [len(query_ids)] * 2 and "prompt_length" not in positive
    assert "prompt_length" in negative

    result = run_training(recipe)
    saved = json.loads((result.final_dir / "config_sentence_transformers.json").read_text())
    assert saved["prompts"] == PROMPTS
    assert json.loads((result.final_dir / "1_Pooling" / "config.json").read_text())["include_prompt"] is False
    texts = ["a man plays the guitar", "what is the weather today"]
    ours = load_model(result.final_dir).encode(texts, prompt_name="query")
    reference = SentenceTransformer(str(result.final_dir)).encode(texts, prompt_name="query", convert_to_tensor=True)
    torch.testing.assert_close(ours, reference.cpu(), atol=1e-5, rtol=0)


def test_a_prompt_must_be_defined_in_model_prompts(tmp_path, tiny_checkpoint, triplet_csv):
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe_file(tmp_path, tiny_checkpoint, triplet_csv, {"anchor": "qeury"}))
    assert "datasets.train.nli.prompts: ['qeury'] not defined in model.prompts" in str(raised.value)
    assert "did you mean 'query'?" in str(raised.value)


def test_prompts_name_inputs_of_the_loss(tmp_path, tiny_checkpoint, triplet_csv):
    # Known from the loss's contract alone: a recipe error at its YAML line, before any data is read.
    with pytest.raises(RecipeError) as raised:
        load_recipe(recipe_file(tmp_path, tiny_checkpoint, triplet_csv, {"anchr": "query"}))
    assert "datasets.train.nli.prompts.anchr: 'anchr' is not an input of the loss (did you mean 'anchor'?)" in str(raised.value)


def test_one_prompt_for_every_input(tmp_path, tiny_checkpoint, triplet_csv):
    from embedtrain.recipe.plan import plan_data

    recipe = load_recipe(recipe_file(tmp_path, tiny_checkpoint, triplet_csv, "document"))
    assert plan_data(recipe).train["nli"].prompts == ("document: ",) * 3

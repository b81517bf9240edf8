"""Every evaluator type is a recipe entry: it validates, round-trips through the resolved recipe, and its metric
names are known at load time, so `metric_for_best_model` is checked before training."""

import pytest
import yaml

from embedtrain.errors import RecipeError
from embedtrain.recipe.loading import dump_recipe, load_recipe


def recipe_text(beir_folder, sts_csv, binary_csv, reranking_jsonl, parallel_csv, teacher, metric: str) -> str:
    evaluators = [
        {"type": "binary", "name": "pairs", "source": str(binary_csv), "similarity_fn_names": ["cosine", "dot"]},
        {"type": "ir", "name": "ir-dev", "source": str(beir_folder), "ndcg_at_k": [5, 10], "corpus_chunk_size": 8},
        {"type": "nanobeir", "source": str(beir_folder.parent), "truncate_dim": 16},
        {"type": "reranking", "name": "rerank", "source": str(reranking_jsonl), "at_k": 5},
        {"type": "paraphrase_mining", "name": "mining", "source": str(binary_csv)},
        {"type": "translation", "name": "translate", "source": str(parallel_csv)},
        {"type": "mse", "name": "distill", "source": str(parallel_csv), "teacher": str(teacher)},
        {"type": "sequential", "evaluators": [{"type": "sts", "name": "sts-dev", "source": str(sts_csv)},
                                              {"type": "triplet", "name": "trip", "source": str(sts_csv),
                                               "columns": {"anchor": "sentence1", "positive": "sentence2",
                                                           "negative": "sentence1"}}]},
    ]
    recipe = {"model": {"base": "tiny"}, "losses": {"l": {"type": "CoSENTLoss"}},
              "datasets": {"train": {"sts": {"source": str(sts_csv)}}}, "evaluators": evaluators,
              "training": {"output_dir": "runs/x", "metric_for_best_model": metric}}
    return yaml.safe_dump(recipe, sort_keys=False)


@pytest.fixture()
def make_recipe(tmp_path, beir_folder, sts_csv, binary_csv, reranking_jsonl, parallel_csv, second_tiny_checkpoint):
    def make(metric: str):
        path = tmp_path / "recipe.yaml"
        path.write_text(recipe_text(beir_folder, sts_csv, binary_csv, reranking_jsonl, parallel_csv,
                                    second_tiny_checkpoint, metric))
        return path
    return make


@pytest.mark.parametrize("metric", ["pairs_max_ap", "ir-dev_cosine_ndcg@5", "NanoBEIR_mean_16_cosine_ndcg@10",
                                    "tinybeir_16_cosine_map@100", "rerank_ndcg@5", "mining_average_precision",
                                    "translate_mean_accuracy", "distill_negative_mse", "sequential_score",
                                    "trip_cosine_accuracy"])
def test_every_evaluator_metric_is_known_at_load_time(metric, make_recipe, tmp_path) -> None:
    recipe = load_recipe(make_recipe(metric))
    assert metric in recipe.metric_names()
    again = tmp_path / "resolved.yaml"
    again.write_text(dump_recipe(recipe))
    assert load_recipe(again) == recipe


def test_an_unknown_metric_is_refused_with_a_suggestion(make_recipe) -> None:
    with pytest.raises(RecipeError, match="did you mean 'NanoBEIR_mean_16_cosine_ndcg@10'"):
        load_recipe(make_recipe("NanoBEIR_mean_16_cosine_ndcg@1O"))


def test_training_runs_retrieval_evaluators_before_and_after(tmp_path, tiny_checkpoint, sts_csv, beir_folder) -> None:
    import json

    from accelerate.state import AcceleratorState
    from typer.testing import CliRunner

    from embedtrain.cli import app

    recipe = {"model": {"base": str(tiny_checkpoint)}, "losses": {"l": {"type": "CoSENTLoss"}},
              "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
              "evaluators": [{"type": "ir", "name": "ir-dev", "source": str(beir_folder)},
                             {"type": "nanobeir", "source": str(beir_folder)}],
              "training": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "batch_size": 8,
                           "metric_for_best_model": "NanoBEIR_mean_cosine_ndcg@10"}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        result = CliRunner().invoke(app, ["train", str(path)])
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [record for record in records if "ir-dev_cosine_ndcg@10" in record]
    assert [record["step"] for record in evaluations] == [0, 2]
    assert all(record["tinybeir_cosine_ndcg@10"] == record["NanoBEIR_mean_cosine_ndcg@10"] for record in evaluations)

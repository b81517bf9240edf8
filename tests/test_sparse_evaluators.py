"""Sparse retrieval evaluators against sentence-transformers' SparseInformationRetrievalEvaluator and
SparseNanoBEIREvaluator on tiny random SPLADE and inference-free SPLADE models: same metric names, same values
(abs 1e-4), sparsity statistics included."""

import shutil

import pytest
import torch
from sentence_transformers import SparseEncoder
from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

from embedtrain.evaluation import build_evaluator
from embedtrain.evaluation.beir import load_beir_folder
from embedtrain.evaluation.sparse_retrieval_evaluators import SparseInformationRetrievalParams, SparseNanoBEIRParams
from embedtrain.models import load_model, save_model
from embedtrain.models.build import build_model
from embedtrain.recipe.schema import ModelConfig


@pytest.fixture(params=["splade", "inference_free_splade"])
def saved_sparse_model(request, tiny_mlm_checkpoint, tmp_path):
    model = build_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse", architecture=request.param))
    if request.param == "inference_free_splade":
        with torch.no_grad():  # distinct query weights, so that routing matters
            model[0].sub_modules["query"][0].weight.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(0))
    save_model(model, tmp_path / "model")
    return tmp_path / "model"


def reference_ir(model_path, folder, name):
    data = load_beir_folder(folder, "test", "test")
    evaluator = SparseInformationRetrievalEvaluator(data.queries, data.corpus, data.relevant, name=name)
    return evaluator(SparseEncoder(str(model_path), device="cpu"))


def test_sparse_ir_matches_the_reference(saved_sparse_model, beir_folder):
    params = SparseInformationRetrievalParams(type="sparse_ir", name="tiny", source=str(beir_folder))

    ours = build_evaluator(params, "evaluators[0]")(load_model(saved_sparse_model))

    expected = reference_ir(saved_sparse_model, beir_folder, "tiny")
    assert set(ours) == set(expected) == set(build_evaluator(params, "e").metric_names(params))
    assert {key: pytest.approx(value, abs=1e-4) for key, value in expected.items()} == ours
    assert ours["tiny_query_active_dims"] > 0 and 0 < ours["tiny_avg_flops"]


def test_sparse_nanobeir_over_local_folders_aggregates_sparsity_like_the_reference(saved_sparse_model, beir_folder,
                                                                                   tmp_path):
    sets = tmp_path / "sets"
    shutil.copytree(beir_folder, sets / "first")
    shutil.copytree(beir_folder, sets / "second")
    (sets / "second" / "corpus.jsonl").write_text(
        "".join(line for index, line in enumerate((beir_folder / "corpus.jsonl").read_text().splitlines(True))
                if index % 2 == 0 or index < 12))
    params = SparseNanoBEIRParams(type="sparse_nanobeir", source=str(sets))

    ours = build_evaluator(params, "evaluators[0]")(load_model(saved_sparse_model))

    first = reference_ir(saved_sparse_model, sets / "first", "first")
    second = reference_ir(saved_sparse_model, sets / "second", "second")
    for key, value in (first | second).items():
        assert ours[key] == pytest.approx(value, abs=1e-4), key
    corpus_sizes = [len(load_beir_folder(sets / name, "test", "t").corpus) for name in ("first", "second")]
    weighted = (first["first_corpus_active_dims"] * corpus_sizes[0] + second["second_corpus_active_dims"]
                * corpus_sizes[1]) / sum(corpus_sizes)
    assert ours["NanoBEIR_mean_corpus_active_dims"] == pytest.approx(weighted, abs=1e-4)
    assert ours["NanoBEIR_mean_dot_ndcg@10"] == pytest.approx(
        (first["first_dot_ndcg@10"] + second["second_dot_ndcg@10"]) / 2, abs=1e-4)
    assert set(ours) == set(type(build_evaluator(params, "e")).metric_names(params))

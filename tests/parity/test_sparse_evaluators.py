"""Sparse evaluators against sentence-transformers' (SparseInformationRetrievalEvaluator, SparseNanoBEIREvaluator,
SparseEmbeddingSimilarityEvaluator, SparseBinaryClassificationEvaluator, SparseTripletEvaluator,
SparseRerankingEvaluator, SparseMSEEvaluator, SparseTranslationEvaluator) on tiny random SPLADE and inference-free
SPLADE models: same metric names, same values (abs 1e-4; MSE and translation rel 1e-6), sparsity statistics
included."""

import csv
import json
import shutil

import pytest
import torch
from helpers.data import PAIRS
from helpers.tiny_models import make_tiny_checkpoint
from sentence_transformers import SparseEncoder
from sentence_transformers.sparse_encoder.evaluation import (
    SparseBinaryClassificationEvaluator,
    SparseEmbeddingSimilarityEvaluator,
    SparseInformationRetrievalEvaluator,
    SparseMSEEvaluator,
    SparseRerankingEvaluator,
    SparseTranslationEvaluator,
    SparseTripletEvaluator,
)

from embedtrain.evaluation import EVALUATORS, build_evaluator
from embedtrain.evaluation.beir import load_beir_folder
from embedtrain.evaluation.sparse_retrieval_evaluators import SparseInformationRetrievalParams, SparseNanoBEIRParams
from embedtrain.models import load_model, save_model
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig


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


def read_columns(path) -> dict[str, list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return {column: [row[column] for row in rows] for column in rows[0]}


def assert_matches_the_reference(model_path, data, reference_evaluator, **params) -> dict[str, float]:
    """Our evaluator `params["type"]` on `data` equals the reference's evaluator (keys in order, values 1e-4)."""
    evaluator_params = EVALUATORS[params["type"]].params_model(name="dev", source=str(data), **params)
    evaluator = build_evaluator(evaluator_params, "evaluators[0]")
    ours = evaluator(load_model(model_path))
    expected = reference_evaluator(SparseEncoder(str(model_path), device="cpu"))
    assert list(ours) == list(expected) == evaluator.metric_names(evaluator_params)
    assert ours == pytest.approx(expected, abs=1e-4)
    assert evaluator.primary_metric == reference_evaluator.primary_metric
    return ours


@pytest.fixture
def unique_sts_csv(tmp_path):
    """Each PAIRS row once: a repeated pair ties with itself in our scores (each distinct text is embedded once) but
    not always in the reference's, whose copies, padded in other batches, can differ in the last bits, and a
    broken tie moves Spearman by ~1e-4 on 48 rows."""
    path = tmp_path / "sts.csv"
    path.write_text("sentence1,sentence2,score\n" + "".join(f"{a},{b},{score}\n" for a, b, score in PAIRS),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("functions", [None, ["cosine", "dot", "euclidean", "manhattan"]], ids=["default", "several"])
def test_sparse_sts_matches_the_reference(functions, saved_sparse_model, unique_sts_csv):
    rows = read_columns(unique_sts_csv)
    options = {"similarity_fn_names": functions} if functions else {}
    reference = SparseEmbeddingSimilarityEvaluator(rows["sentence1"], rows["sentence2"],
                                                   [float(score) for score in rows["score"]], name="dev",
                                                   write_csv=False, **options)
    ours = assert_matches_the_reference(saved_sparse_model, unique_sts_csv, reference, type="sparse_sts", **options)
    assert {"dev_spearman_dot", "dev_active_dims", "dev_sparsity_ratio"} <= set(ours)


def test_sparse_binary_matches_the_reference(saved_sparse_model, binary_csv):
    rows = read_columns(binary_csv)  # every pair twice: the statistics count each distinct text once
    reference = SparseBinaryClassificationEvaluator(rows["sentence1"], rows["sentence2"],
                                                    [int(label) for label in rows["label"]], name="dev",
                                                    write_csv=False)
    ours = assert_matches_the_reference(saved_sparse_model, binary_csv, reference, type="sparse_binary")
    assert {"dev_dot_ap", "dev_active_dims", "dev_sparsity_ratio"} <= set(ours)


def test_sparse_triplet_matches_the_reference(saved_sparse_model, triplet_csv):
    rows = read_columns(triplet_csv)
    reference = SparseTripletEvaluator(rows["anchor"], rows["positive"], rows["negative"], name="dev",
                                       write_csv=False)
    ours = assert_matches_the_reference(saved_sparse_model, triplet_csv, reference, type="sparse_triplet")
    assert {"dev_dot_accuracy", "dev_anchor_active_dims", "dev_negative_sparsity_ratio"} <= set(ours)


def test_sparse_reranking_matches_the_reference(saved_sparse_model, reranking_jsonl):
    samples = [json.loads(line) for line in reranking_jsonl.read_text().splitlines()]
    reference = SparseRerankingEvaluator(samples, name="dev", write_csv=False)
    ours = assert_matches_the_reference(saved_sparse_model, reranking_jsonl, reference, type="sparse_reranking")
    assert {"dev_ndcg@10", "dev_query_active_dims", "dev_corpus_sparsity_ratio"} <= set(ours)


def assert_same_metrics_rel(model_path, data, reference_evaluator, **params) -> dict[str, float]:
    """As assert_matches_the_reference, within rel 1e-6 (no ranking or correlation whose ties could flip)."""
    evaluator_params = EVALUATORS[params["type"]].params_model(name="dev", source=str(data), **params)
    evaluator = build_evaluator(evaluator_params, "evaluators[0]")
    ours = evaluator(load_model(model_path))
    expected = reference_evaluator(SparseEncoder(str(model_path), device="cpu"))
    assert list(ours) == list(expected) == evaluator.metric_names(evaluator_params)
    assert ours == pytest.approx(expected, rel=1e-6, abs=0)
    assert evaluator.primary_metric == reference_evaluator.primary_metric
    return ours


def test_sparse_translation_matches_the_reference(saved_sparse_model, parallel_csv):
    rows = read_columns(parallel_csv)  # two rows share a target: matching either counts as correct
    reference = SparseTranslationEvaluator(rows["source"], rows["target"], name="dev", write_csv=False)
    ours = assert_same_metrics_rel(saved_sparse_model, parallel_csv, reference, type="sparse_translation")
    assert list(ours) == ["dev_src2trg_accuracy", "dev_trg2src_accuracy", "dev_mean_accuracy", "dev_active_dims",
                          "dev_sparsity_ratio"]
    assert 0 < ours["dev_mean_accuracy"] < 1 and ours["dev_active_dims"] > 0


@pytest.fixture(scope="module")
def sparse_teacher_checkpoint(tmp_path_factory):
    """Another random tiny masked-LM (its own seed, the same vocabulary): a plain checkpoint, which both libraries
    build as SPLADE."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-mlm-teacher"), seed=1, masked_lm=True)


def test_sparse_mse_matches_the_reference(saved_sparse_model, sparse_teacher_checkpoint, parallel_csv):
    rows = read_columns(parallel_csv)
    teacher = SparseEncoder(str(sparse_teacher_checkpoint), device="cpu")
    reference = SparseMSEEvaluator(rows["source"], rows["target"], teacher_model=teacher, name="dev", write_csv=False)
    ours = assert_same_metrics_rel(saved_sparse_model, parallel_csv, reference, type="sparse_mse",
                                   teacher=str(sparse_teacher_checkpoint))
    assert list(ours) == ["dev_negative_mse", "dev_active_dims", "dev_sparsity_ratio"]
    assert ours["dev_negative_mse"] < 0


def test_sparse_mse_of_a_model_with_itself_as_teacher_is_zero(saved_sparse_model, parallel_csv, tmp_path):
    same = tmp_path / "same.csv"  # the teacher embeds the same texts as the model
    same.write_text("source,target\n" + "".join(f"{text},{text}\n" for text in read_columns(parallel_csv)["target"]))
    rows = read_columns(same)
    reference = SparseMSEEvaluator(rows["source"], rows["target"], name="dev", write_csv=False,
                                   teacher_model=SparseEncoder(str(saved_sparse_model), device="cpu"))
    ours = assert_same_metrics_rel(saved_sparse_model, same, reference, type="sparse_mse",
                                   teacher=str(saved_sparse_model))
    assert ours["dev_negative_mse"] == 0

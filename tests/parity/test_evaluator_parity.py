"""embedtrain's evaluators report what sentence-transformers' (the reference's) evaluators report.

Each embedtrain evaluator is built from a file (CSV, or a BEIR folder), the reference's evaluator from the
same rows, and each runs on the same tiny BERT loaded by its own library: the metric dicts have the same
names, in the same order, and values (within 1e-4).
The correlation helpers they use agree with scipy.stats, ties included.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import (
    BinaryClassificationEvaluator,
    EmbeddingSimilarityEvaluator,
    InformationRetrievalEvaluator,
    MSEEvaluator,
    ParaphraseMiningEvaluator,
    RerankingEvaluator,
    SequentialEvaluator,
    TranslationEvaluator,
    TripletEvaluator,
)
from sentence_transformers.util import cos_sim, dot_score, euclidean_sim, manhattan_sim

from embedtrain.evaluation import EVALUATORS, build_evaluator
from embedtrain.evaluation.beir import load_beir_folder
from embedtrain.evaluation.metrics import pearson, rankdata, spearman
from embedtrain.models.io import load_model

ALL_SIMILARITIES = ["cosine", "dot", "euclidean", "manhattan"]


def read_columns(path: Path) -> dict[str, list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return {column: [row[column] for row in rows] for column in rows[0]}


def our_metrics(checkpoint: Path, data: Path, **params) -> dict[str, float]:
    evaluator_params = EVALUATORS[params["type"]].params_model(name="dev", source=str(data), **params)
    return build_evaluator(evaluator_params, "evaluators.dev")(load_model(checkpoint))


def reference_metrics(checkpoint: Path, evaluator) -> dict[str, float]:
    return evaluator(SentenceTransformer(str(checkpoint), device="cpu"))


def assert_same_metrics(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert list(ours) == list(reference)
    assert ours == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize("similarity_fn_names", [["cosine"], ["manhattan"], ALL_SIMILARITIES], ids=str)
def test_sts_evaluator_matches_the_reference(similarity_fn_names, tiny_checkpoint: Path, sts_csv: Path) -> None:
    rows = read_columns(sts_csv)
    reference = EmbeddingSimilarityEvaluator(rows["sentence1"], rows["sentence2"], [float(s) for s in rows["score"]],
                                             similarity_fn_names=similarity_fn_names, name="dev", write_csv=False)
    ours = our_metrics(tiny_checkpoint, sts_csv, type="sts", similarity_fn_names=similarity_fn_names)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))


@pytest.mark.parametrize("options", [
    {"precision": "float32"}, {"precision": "int8", "truncate_dim": 16}, {"precision": "uint8"},
    {"precision": "binary", "similarity_fn_names": ALL_SIMILARITIES}, {"precision": "ubinary"},
    {"main_similarity": "dot", "similarity_fn_names": ["cosine", "dot"]},
], ids=str)
def test_sts_evaluator_options_match_the_reference(options, tiny_checkpoint: Path, sts_csv: Path) -> None:
    rows = read_columns(sts_csv)
    reference = EmbeddingSimilarityEvaluator(rows["sentence1"], rows["sentence2"], [float(s) for s in rows["score"]],
                                             name="dev", write_csv=False, **options)
    ours = our_metrics(tiny_checkpoint, sts_csv, type="sts", **options)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))
    params = EVALUATORS["sts"].params_model(type="sts", name="dev", source=str(sts_csv), **options)
    assert f"dev_{EVALUATORS['sts'].evaluator_class.primary_key(params)}" == reference.primary_metric


@pytest.mark.parametrize("options", [
    {},
    {"margin": 0.01},  # margins are chosen so that they change the accuracy of this model
    {"similarity_fn_names": ["manhattan"], "margin": 0.5},
    {"similarity_fn_names": ALL_SIMILARITIES},
    {"similarity_fn_names": ALL_SIMILARITIES, "margin": 0.1},
], ids=str)
def test_triplet_evaluator_matches_the_reference(options, tiny_checkpoint: Path, triplet_csv: Path) -> None:
    rows = read_columns(triplet_csv)
    reference = TripletEvaluator(rows["anchor"], rows["positive"], rows["negative"], name="dev", write_csv=False,
                                 **options)
    ours = our_metrics(tiny_checkpoint, triplet_csv, type="triplet", **options)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))


@pytest.mark.parametrize("similarity_fn_names", [["cosine"], ["euclidean"], ALL_SIMILARITIES], ids=str)
def test_binary_evaluator_matches_the_reference(similarity_fn_names, tiny_checkpoint: Path, binary_csv: Path) -> None:
    rows = read_columns(binary_csv)
    reference = BinaryClassificationEvaluator(rows["sentence1"], rows["sentence2"], [int(x) for x in rows["label"]],
                                              similarity_fn_names=similarity_fn_names, name="dev", write_csv=False)
    ours = our_metrics(tiny_checkpoint, binary_csv, type="binary", similarity_fn_names=similarity_fn_names)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))


SCORE_FUNCTIONS = {"cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}


@pytest.mark.parametrize("options", [
    {},
    {"score_functions": ["dot", "cosine", "manhattan", "euclidean"], "corpus_chunk_size": 4},
    {"mrr_at_k": [1, 5], "ndcg_at_k": [3, 20], "accuracy_at_k": [2], "precision_recall_at_k": [1, 2, 50],
     "map_at_k": [4, 10], "corpus_chunk_size": 7},
    {"query_prompt": "question: ", "corpus_prompt": "answer: ", "truncate_dim": 16},
], ids=str)
def test_ir_evaluator_matches_the_reference(options, tiny_checkpoint: Path, beir_folder: Path) -> None:
    data = load_beir_folder(beir_folder, "test", "test")
    reference_options = dict(options)
    if "score_functions" in options:
        reference_options["score_functions"] = {fn: SCORE_FUNCTIONS[fn] for fn in options["score_functions"]}
    reference = InformationRetrievalEvaluator(data.queries, data.corpus, data.relevant, name="dev", write_csv=False,
                                              **reference_options)
    ours = our_metrics(tiny_checkpoint, beir_folder, type="ir", **options)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))


@pytest.mark.parametrize("options", [{}, {"at_k": 2, "similarity_fn_name": "dot"}, {"truncate_dim": 8}], ids=str)
def test_reranking_evaluator_matches_the_reference(options, tiny_checkpoint: Path, reranking_jsonl: Path) -> None:
    samples = [json.loads(line) for line in reranking_jsonl.read_text().splitlines()]
    reference_options = {key: value for key, value in options.items() if key != "similarity_fn_name"}
    reference = RerankingEvaluator(samples, name="dev", write_csv=False,
                                   similarity_fct=SCORE_FUNCTIONS[options.get("similarity_fn_name", "cosine")],
                                   **reference_options)
    ours = our_metrics(tiny_checkpoint, reranking_jsonl, type="reranking", **options)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))


@pytest.mark.parametrize("options", [{}, {"truncate_dim": 8}], ids=str)
def test_translation_evaluator_matches_the_reference(options, tiny_checkpoint: Path, parallel_csv: Path) -> None:
    rows = read_columns(parallel_csv)
    reference = TranslationEvaluator(rows["source"], rows["target"], name="dev", write_csv=False, **options)
    ours = our_metrics(tiny_checkpoint, parallel_csv, type="translation", **options)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))


def test_mse_evaluator_matches_the_reference(tiny_checkpoint: Path, second_tiny_checkpoint: Path,
                                             parallel_csv: Path) -> None:
    rows = read_columns(parallel_csv)
    teacher = SentenceTransformer(str(second_tiny_checkpoint), device="cpu")
    reference = MSEEvaluator(rows["source"], rows["target"], teacher_model=teacher, name="dev", write_csv=False)
    ours = our_metrics(tiny_checkpoint, parallel_csv, type="mse", teacher=str(second_tiny_checkpoint))
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))
    assert ours["dev_negative_mse"] < 0


@pytest.mark.parametrize("options", [{}, {"top_k": 2, "add_transitive_closure": True}, {"max_pairs": 40, "top_k": 5}], ids=str)
def test_paraphrase_mining_evaluator_matches_the_reference(options, tiny_checkpoint: Path, binary_csv: Path) -> None:
    rows = read_columns(binary_csv)
    sentences = dict.fromkeys(rows["sentence1"] + rows["sentence2"])
    duplicates = [(a, b) for a, b, label in zip(rows["sentence1"], rows["sentence2"], rows["label"]) if label == "1"]
    reference = ParaphraseMiningEvaluator({text: text for text in sentences}, duplicates_list=duplicates, name="dev",
                                          write_csv=False, **options)
    ours = our_metrics(tiny_checkpoint, binary_csv, type="paraphrase_mining", **options)
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))
    assert ours["dev_f1"] > 0  # some duplicates are mined, so every metric is exercised


def test_sequential_evaluator_matches_the_reference(tiny_checkpoint: Path, sts_csv: Path, triplet_csv: Path) -> None:
    sts, triplets = read_columns(sts_csv), read_columns(triplet_csv)
    reference = SequentialEvaluator([
        EmbeddingSimilarityEvaluator(sts["sentence1"], sts["sentence2"], [float(s) for s in sts["score"]],
                                     name="sts-dev", write_csv=False),
        TripletEvaluator(triplets["anchor"], triplets["positive"], triplets["negative"], name="trip", write_csv=False),
    ])
    children = [{"type": "sts", "name": "sts-dev", "source": str(sts_csv)},
                {"type": "triplet", "name": "trip", "source": str(triplet_csv)}]
    params = EVALUATORS["sequential"].params_model(type="sequential", evaluators=children)
    ours = build_evaluator(params, "evaluators[0]")(load_model(tiny_checkpoint))
    assert_same_metrics(ours, reference_metrics(tiny_checkpoint, reference))


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 6, size=40) / 5  # few distinct values: many ties, as STS gold scores have
    scores = np.round(gold + rng.normal(scale=0.3, size=40), 1)  # ties on this side too
    assert len(np.unique(scores)) < len(scores)
    assert np.array_equal(rankdata(scores), scipy.stats.rankdata(scores))
    assert pearson(gold, scores) == pytest.approx(scipy.stats.pearsonr(gold, scores)[0], abs=1e-12)
    assert spearman(gold, scores) == pytest.approx(scipy.stats.spearmanr(gold, scores)[0], abs=1e-12)

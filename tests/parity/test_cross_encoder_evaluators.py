"""embedtrain's cross-encoder evaluators report what the reference's report, for the same model and data.

One tiny random cross-encoder, loaded by the reference's CrossEncoder, scores for both: the reference's evaluators
call it directly, embedtrain's through `ReferencePredictor` (its `predict` and `num_labels`, all they use). Metric
names match in order, values within rel 1e-6, for every evaluator and option. The ranking and F1 helpers agree
with scikit-learn (the reference's maths), ties included.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers.cross_encoder_predict import ReferencePredictor, make_tiny_cross_encoder
from helpers.data import PAIRS, SHARED_DATA, write_beir_folder
from helpers.sparse_models import splade_model
from sentence_transformers import CrossEncoder, SentenceTransformer
from sentence_transformers.cross_encoder.evaluation import (
    CrossEncoderClassificationEvaluator,
    CrossEncoderCorrelationEvaluator,
    CrossEncoderNanoBEIREvaluator,
    CrossEncoderRerankingEvaluator,
)
from sentence_transformers.util import semantic_search
from sklearn.metrics import f1_score

from embedtrain.evaluation import EVALUATORS, build_evaluator
from embedtrain.evaluation.beir import load_beir_folder
from embedtrain.evaluation.metrics import average_precision, f1_averages, ndcg_tie_averaged, reciprocal_rank
from embedtrain.models.io import load_model

SETS = {"msmarco": "NanoMSMARCO", "scifact": "NanoSciFact"}
FIRST_TEXTS = [first for first, _, _ in PAIRS]
SECOND_TEXTS = [second for _, second, _ in PAIRS]


@pytest.fixture(scope="module")
def scorer(tmp_path_factory) -> CrossEncoder:
    return CrossEncoder(str(make_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"))), device="cpu")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> CrossEncoder:
    return CrossEncoder(str(make_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce-3"), num_labels=3)), device="cpu")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows([header, *rows])
    return path


def negatives_samples() -> list[dict]:
    """query + positives + negatives, including a single-text positive and a query without positives (scores 0)."""
    samples = []
    for index, (query, positive, _) in enumerate(PAIRS):
        negatives = [SECOND_TEXTS[(index + shift) % len(PAIRS)] for shift in (1, 3, 4, 7)]
        positives = [positive, SECOND_TEXTS[(index + 5) % len(PAIRS)]] if index % 3 == 0 else positive
        samples.append({"query": query, "positive": [] if index == 4 else positives, "negative": negatives})
    return samples


def ranked_samples() -> list[dict]:
    """query + positives + a ranked `documents` list that holds some positives (at varying ranks), misses others
    (query 2 has a second positive outside the list), or holds none (query 5)."""
    samples = []
    for index, (query, positive, _) in enumerate(PAIRS):
        others = [SECOND_TEXTS[(index + shift) % len(PAIRS)] for shift in (1, 2, 6, 9, 10)]
        documents = others[:index % 5] + [positive] + others[index % 5:] if index != 5 else others
        positives = [positive, "a small red car on the road"] if index == 2 else [positive]
        samples.append({"query": query, "positive": positives, "documents": documents})
    return samples


def ours(predictor: ReferencePredictor, type_name: str, **fields) -> dict[str, float]:
    params = EVALUATORS[type_name].params_model(type=type_name, **fields)
    evaluator = build_evaluator(params, "evaluators[0]")
    metrics = evaluator(predictor)
    declared = evaluator.metric_names(params)
    if type_name == "cross_encoder_reranking" and params.columns is None:  # base_* are declared with `columns:` only
        assert declared == [name for name in metrics if "_base_" not in name]
    else:
        assert list(metrics) == declared, "the declared metric names are those produced"
    assert evaluator.primary_metric in metrics
    return metrics


def assert_same(ours_metrics: dict[str, float], reference: dict[str, float]) -> None:
    assert list(ours_metrics) == list(reference)
    assert ours_metrics == pytest.approx({key: float(value) for key, value in reference.items()}, rel=1e-6, abs=1e-12)


# -- reranking ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at_k", [10, 3])
def test_reranking_with_negatives_matches_the_reference(at_k, scorer, tmp_path) -> None:
    samples = negatives_samples()
    source = write_jsonl(tmp_path / "rerank.jsonl", samples)
    reference = CrossEncoderRerankingEvaluator(samples, at_k=at_k, name="dev", write_csv=False)(scorer)
    assert_same(ours(ReferencePredictor(scorer), "cross_encoder_reranking", name="dev", source=str(source), at_k=at_k),
                reference)
    assert 0 < reference[f"dev_ndcg@{at_k}"] < 1


@pytest.mark.parametrize("always_rerank_positives", [True, False])
@pytest.mark.parametrize("at_k", [10, 2])
def test_reranking_a_ranked_list_matches_the_reference(always_rerank_positives, at_k, scorer, tmp_path) -> None:
    samples = ranked_samples()
    source = write_jsonl(tmp_path / "ranked.jsonl", samples)
    reference = CrossEncoderRerankingEvaluator(samples, at_k=at_k, always_rerank_positives=always_rerank_positives,
                                               name="dev", write_csv=False)(scorer)
    assert f"dev_base_ndcg@{at_k}" in reference
    columns = {"query": "query", "positive": "positive", "documents": "documents"}
    predictor = ReferencePredictor(scorer)
    metrics = ours(predictor, "cross_encoder_reranking", name="dev", source=str(source), at_k=at_k,
                   always_rerank_positives=always_rerank_positives, columns=columns)
    assert_same(metrics, reference)
    assert len(predictor.calls) == 1, "every pair is scored in one predict call, as the reference does"
    # Without `columns:`, a column named `documents` makes the data a ranking too.
    inferred = ours(ReferencePredictor(scorer), "cross_encoder_reranking", name="dev", source=str(source), at_k=at_k,
                    always_rerank_positives=always_rerank_positives)
    assert inferred == metrics


def test_always_rerank_positives_changes_what_is_reranked(scorer, tmp_path) -> None:
    source = str(write_jsonl(tmp_path / "ranked.jsonl", ranked_samples()))
    every = ours(ReferencePredictor(scorer), "cross_encoder_reranking", name="d", source=source,
                 columns={"query": "query", "positive": "positive", "documents": "documents"})
    listed = ours(ReferencePredictor(scorer), "cross_encoder_reranking", name="d", source=source,
                  always_rerank_positives=False, columns={"query": "query", "positive": "positive",
                                                          "documents": "documents"})
    assert every["d_base_map"] == listed["d_base_map"]  # the incoming order does not depend on it
    assert every["d_ndcg@10"] > listed["d_ndcg@10"]  # query 5's positive is reranked only with it


# -- correlation and classification ---------------------------------------------------------------------------------


def test_correlation_matches_the_reference(scorer, sts_csv: Path) -> None:
    with sts_csv.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    pairs = [[row["sentence1"], row["sentence2"]] for row in rows]
    reference = CrossEncoderCorrelationEvaluator(pairs, [float(row["score"]) for row in rows], name="sts",
                                                 write_csv=False)(scorer)
    assert_same(ours(ReferencePredictor(scorer), "cross_encoder_correlation", name="sts", source=str(sts_csv)),
                reference)


def classification_rows(classes: int) -> list[tuple[str, str, int]]:
    return [(first, SECOND_TEXTS[(index * 5 + shift) % len(PAIRS)], (index + shift) % classes)
            for shift in range(3) for index, first in enumerate(FIRST_TEXTS)]


@pytest.mark.parametrize("num_labels", [1, 3])
def test_classification_matches_the_reference(num_labels, scorer, classifier, tmp_path) -> None:
    model = scorer if num_labels == 1 else classifier
    rows = classification_rows(2 if num_labels == 1 else 3)
    source = write_csv(tmp_path / "pairs.csv", ["sentence1", "sentence2", "label"], rows)
    reference = CrossEncoderClassificationEvaluator([[a, b] for a, b, _ in rows], [label for _, _, label in rows],
                                                    name="cls", write_csv=False)(model)
    metrics = ours(ReferencePredictor(model), "cross_encoder_classification", name="cls", source=str(source),
                   num_labels=num_labels)
    assert_same(metrics, reference)
    expected_primary = "cls_average_precision" if num_labels == 1 else "cls_f1_macro"
    assert expected_primary in metrics


@pytest.mark.parametrize("seed", range(6))
def test_f1_averages_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=50)
    predictions = np.where(rng.random(50) < 0.5, labels, rng.integers(0, 5, size=50))  # class 4: predicted only
    metrics = f1_averages(labels, predictions)
    for average in ("macro", "micro", "weighted"):
        assert metrics[f"f1_{average}"] == pytest.approx(f1_score(labels, predictions, average=average), abs=1e-12)


@pytest.mark.parametrize("at_k", [1, 3, 10])
@pytest.mark.parametrize("seed", range(6))
def test_list_metrics_match_the_reference(seed: int, at_k: int) -> None:
    """MRR, nDCG and AP of one list, with tied scores, as the reference's compute_metrics."""
    rng = np.random.default_rng(seed)
    relevance = rng.integers(0, 2, size=14)
    relevance[seed % 14] = 1
    scores = np.round(rng.normal(size=14), 1).astype(np.float32)  # ties
    mrr, ndcg, ap = CrossEncoderRerankingEvaluator([], at_k=at_k).compute_metrics(relevance, scores)
    assert reciprocal_rank(relevance, scores, at_k) == pytest.approx(mrr, abs=1e-12)
    assert ndcg_tie_averaged(relevance, scores, at_k) == pytest.approx(ndcg, abs=1e-12)
    assert average_precision(relevance, scores) == pytest.approx(ap, abs=1e-12)


# -- NanoBEIR reranking ------------------------------------------------------------------------------------------


def bm25_like(data, seed: int) -> dict[str, list[str]]:
    """A deterministic stand-in for bm25 rankings: every corpus id in a shuffled order per query."""
    rng = np.random.default_rng(seed)
    ids = sorted(data.corpus)
    return {query_id: [ids[i] for i in rng.permutation(len(ids))] for query_id in data.queries}


@pytest.fixture(scope="module")
def nano_folders(tmp_path_factory) -> Path:
    """Two BEIR folders (the second without its first three queries' qrels), each with a candidates.jsonl."""
    root = tmp_path_factory.mktemp("ce-nanobeir")
    for seed, human in enumerate(SETS.values()):
        folder = write_beir_folder(root / human)
        if seed:
            qrels = (folder / "qrels" / "test.tsv").read_text().splitlines()
            kept = [line for line in qrels if not line.startswith(("q0\t", "q1\t", "q2\t"))]
            (folder / "qrels" / "test.tsv").write_text("\n".join(kept) + "\n")
        data = load_beir_folder(folder, "test", "fixture")
        ranked = [{"query-id": qid, "corpus-ids": ids} for qid, ids in bm25_like(data, seed).items()
                  if data.relevant.get(qid)]
        write_jsonl(root / f"{human}.candidates.jsonl", ranked)
    return root


def write_hub_layout(root: Path, folders: Path, candidates: dict[str, dict[str, list[str]]]) -> Path:
    """The sets of `folders` as a dataset repository (subsets corpus/queries/qrels/bm25, a split per set), with
    `candidates[set]` as the bm25 rankings."""
    configs = []
    for subset in ("corpus", "queries", "qrels", "bm25"):
        (root / subset).mkdir(parents=True)
        files = []
        for human in SETS.values():
            data = load_beir_folder(folders / human, "test", "fixture")
            rows = {"corpus": [{"_id": cid, "text": text} for cid, text in data.corpus.items()],
                    "queries": [{"_id": qid, "text": text} for qid, text in data.queries.items()],
                    "qrels": [{"query-id": qid, "corpus-id": cid} for qid, cids in data.relevant.items()
                              for cid in sorted(cids)],
                    "bm25": [{"query-id": qid, "corpus-ids": ids} for qid, ids in candidates[human].items()]}[subset]
            write_jsonl(root / subset / f"{human}.jsonl", rows)
            files.append(f"  - split: {human}\n    path: {subset}/{human}.jsonl")
        configs.append(f"- config_name: {subset}\n  data_files:\n" + "\n".join(files))
    (root / "README.md").write_text("---\nconfigs:\n" + "\n".join(configs) + "\n---\n")
    return root


def file_rankings(folders: Path) -> dict[str, dict[str, list[str]]]:
    return {human: {row["query-id"]: row["corpus-ids"] for row in map(json.loads, (
        folders / f"{human}.candidates.jsonl").read_text().splitlines())} for human in SETS.values()}


@pytest.fixture(scope="module")
def nano_hub(nano_folders: Path, tmp_path_factory) -> Path:
    return write_hub_layout(tmp_path_factory.mktemp("ce-nanobeir-hub"), nano_folders, file_rankings(nano_folders))


@pytest.mark.parametrize("options", [{}, {"rerank_k": 5}, {"rerank_k": 5, "always_rerank_positives": False, "at_k": 3}],
                         ids=str)
def test_nanobeir_reranking_matches_the_reference(options, scorer, nano_hub: Path, nano_folders: Path) -> None:
    reference = CrossEncoderNanoBEIREvaluator(list(SETS), dataset_id=str(nano_hub), write_csv=False, **options)
    expected = reference(scorer)
    rerank_k = options.get("rerank_k", 100)
    assert reference.primary_metric == f"NanoBEIR_R{rerank_k}_mean_ndcg@{options.get('at_k', 10)}"
    from_hub = ours(ReferencePredictor(scorer), "cross_encoder_nanobeir", source=str(nano_hub),
                    dataset_names=list(SETS), **options)
    assert_same(from_hub, expected)
    # Each set as a local BEIR folder with its candidates file: the same figures.
    for human in SETS.values():
        from_file = ours(ReferencePredictor(scorer), "cross_encoder_nanobeir", source=str(nano_folders / human),
                         candidates=str(nano_folders / f"{human}.candidates.jsonl"), **options)
        per_set = {key: value for key, value in expected.items() if key.startswith(f"{human}_")}
        assert {key: value for key, value in from_file.items() if key.startswith(f"{human}_")} == pytest.approx(
            per_set, rel=1e-6)


def test_first_stage_candidates_match_the_reference(scorer, tiny_checkpoint: Path, nano_folders: Path,
                                                    tmp_path) -> None:
    """A first-stage model's top rerank_k, reranked: the same figures as the reference's evaluator given the
    reference bi-encoder's top rerank_k as its bm25 lists; its base metrics are the IR evaluator's."""
    rerank_k = 6
    bi_encoder = SentenceTransformer(str(tiny_checkpoint), device="cpu")
    rankings = {}
    for human in SETS.values():
        data = load_beir_folder(nano_folders / human, "test", "fixture")
        query_ids = [qid for qid in data.queries if data.relevant.get(qid)]
        corpus_ids = list(data.corpus)
        hits = semantic_search(bi_encoder.encode([data.queries[q] for q in query_ids], convert_to_tensor=True),
                               bi_encoder.encode([data.corpus[c] for c in corpus_ids], convert_to_tensor=True),
                               top_k=rerank_k)
        rankings[human] = {qid: [corpus_ids[hit["corpus_id"]] for hit in query_hits]
                           for qid, query_hits in zip(query_ids, hits)}
    hub = write_hub_layout(tmp_path / "hub", nano_folders, rankings)
    expected = CrossEncoderNanoBEIREvaluator(list(SETS), dataset_id=str(hub), rerank_k=rerank_k,
                                             write_csv=False)(scorer)
    metrics = ours(ReferencePredictor(scorer), "cross_encoder_nanobeir", source=str(nano_folders),
                   first_stage=str(tiny_checkpoint), rerank_k=rerank_k)
    assert_same(metrics, expected)
    ir = build_evaluator(EVALUATORS["ir"].params_model(type="ir", name="ir", source=str(nano_folders / "NanoSciFact"),
                                                       ndcg_at_k=[3], mrr_at_k=[3]), "ir")
    first_stage = ours(ReferencePredictor(scorer), "cross_encoder_nanobeir", source=str(nano_folders / "NanoSciFact"),
                       first_stage=str(tiny_checkpoint), rerank_k=rerank_k, at_k=3, always_rerank_positives=False)
    retrieval = ir(load_model(tiny_checkpoint))
    assert first_stage["NanoSciFact_R6_base_ndcg@3"] == pytest.approx(retrieval["ir_cosine_ndcg@3"], rel=1e-6)
    assert first_stage["NanoSciFact_R6_base_mrr@3"] == pytest.approx(retrieval["ir_cosine_mrr@3"], rel=1e-6)


def test_a_sparse_first_stage_ranks_by_its_own_similarity(scorer, tiny_mlm_checkpoint: Path, nano_folders: Path,
                                                          tmp_path) -> None:
    """A saved sparse model (SPLADE) as the first stage: its candidates are the sparse IR evaluator's ranking (dot
    product, query and document routes), so the base metrics are that evaluator's."""
    splade_model(tiny_mlm_checkpoint).save(str(tmp_path / "splade"))
    source = str(nano_folders / "NanoMSMARCO")
    metrics = ours(ReferencePredictor(scorer), "cross_encoder_nanobeir", source=source, first_stage=str(tmp_path / "splade"),
                   rerank_k=10, at_k=5)
    retrieval = build_evaluator(EVALUATORS["sparse_ir"].params_model(
        type="sparse_ir", name="ir", source=source, ndcg_at_k=[5], mrr_at_k=[5]), "ir")(load_model(tmp_path / "splade"))
    assert metrics["NanoMSMARCO_R10_base_ndcg@5"] == pytest.approx(retrieval["ir_dot_ndcg@5"], rel=1e-6)
    assert 0 < metrics["NanoMSMARCO_R10_base_ndcg@5"] < 1
    assert metrics["NanoMSMARCO_R10_base_mrr@5"] == pytest.approx(retrieval["ir_dot_mrr@5"], rel=1e-6)


@pytest.mark.slow
def test_the_first_stage_of_the_trecqa_figure(scorer, minilm_path: Path) -> None:
    """all-MiniLM-L6-v2's top 20 on TrecQA test (the issue's headline set-up, `rerank_k: 20` without reranking the
    positives it misses): the first stage's own nDCG@10 and MRR@10 (`base_*`) are the IR evaluator's, 0.600."""
    source = str(SHARED_DATA / "trecqa" / "beir_test")
    metrics = ours(ReferencePredictor(scorer), "cross_encoder_nanobeir", name="trecqa", source=source,
                   first_stage=str(minilm_path), rerank_k=20, always_rerank_positives=False)
    retrieval = build_evaluator(EVALUATORS["ir"].params_model(type="ir", name="ir", source=source), "ir")(
        load_model(minilm_path))
    assert metrics["beir_test_R20_base_ndcg@10"] == pytest.approx(retrieval["ir_cosine_ndcg@10"], rel=1e-6)
    assert metrics["beir_test_R20_base_mrr@10"] == pytest.approx(retrieval["ir_cosine_mrr@10"], rel=1e-6)
    assert metrics["trecqa_R20_mean_base_ndcg@10"] == pytest.approx(0.600, abs=0.005)


@pytest.mark.slow
def test_reranking_matches_the_reference_on_trecqa(tmp_path, minilm_path: Path) -> None:
    """The real TrecQA test lists (68 queries), scored by a reranker built on all-MiniLM-L6-v2's encoder with a
    fresh seeded head: the same metrics as the reference's, as positives + negatives and (20 of them) as ranked
    lists."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    BertForSequenceClassification.from_pretrained(str(minilm_path), num_labels=1).save_pretrained(tmp_path / "ce")
    AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(tmp_path / "ce")
    model = CrossEncoder(str(tmp_path / "ce"), device="cpu")
    source = SHARED_DATA / "trecqa" / "test_reranking.jsonl"
    samples = [json.loads(line) for line in source.read_text().splitlines()]
    reference = CrossEncoderRerankingEvaluator(samples, name="trecqa", write_csv=False)(model)
    assert_same(ours(ReferencePredictor(model), "cross_encoder_reranking", name="trecqa", source=str(source)),
                reference)
    ranked = [{"query": s["query"], "positive": s["positive"], "documents": s["negative"][:3] + s["positive"][:1]
               + s["negative"][3:]} for s in samples[:20]]
    reference = CrossEncoderRerankingEvaluator(ranked, always_rerank_positives=False, name="trecqa",
                                               write_csv=False)(model)
    assert_same(ours(ReferencePredictor(model), "cross_encoder_reranking", name="trecqa", always_rerank_positives=False,
                     source=str(write_jsonl(tmp_path / "ranked.jsonl", ranked))), reference)

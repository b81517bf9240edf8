"""NanoBEIR: the same metric names and values as the reference's NanoBEIREvaluator.

The reference loads `load_dataset(dataset_id, subset, split="Nano{Name}")`; a local folder laid out as such a
hub dataset (a README.md declaring the corpus/queries/qrels subsets) stands in for the hub here, and the same
sets as BEIR folders named NanoMSMARCO and NanoSciFact give the same numbers.
"""

import json
from pathlib import Path

import pytest
from helpers.data import write_beir_folder
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import NanoBEIREvaluator

from embedtrain.errors import DataError
from embedtrain.evaluation import EVALUATORS, build_evaluator
from embedtrain.evaluation.beir import load_beir_folder
from embedtrain.models.io import load_model

SETS = {"msmarco": "NanoMSMARCO", "scifact": "NanoSciFact"}


@pytest.fixture(scope="module")
def beir_collection(tmp_path_factory) -> Path:
    """A folder of two BEIR folders; the second set drops the first three queries so the sets differ."""
    root = tmp_path_factory.mktemp("nanobeir-folders")
    write_beir_folder(root / "NanoMSMARCO")
    scifact = write_beir_folder(root / "NanoSciFact")
    qrels = (scifact / "qrels" / "test.tsv").read_text().splitlines()
    kept = [line for line in qrels if not line.startswith(("q0\t", "q1\t", "q2\t"))]
    (scifact / "qrels" / "test.tsv").write_text("\n".join(kept) + "\n")
    return root


@pytest.fixture(scope="module")
def hub_layout(beir_collection: Path, tmp_path_factory) -> Path:
    """The same sets as a dataset repository: subsets corpus/queries/qrels, one split per set."""
    root = tmp_path_factory.mktemp("nanobeir-hub")
    configs = []
    for subset in ("corpus", "queries", "qrels"):
        (root / subset).mkdir()
        files = []
        for human in SETS.values():
            data = load_beir_folder(beir_collection / human, "test", "fixture")
            if subset == "corpus":
                rows = [{"_id": cid, "text": text} for cid, text in data.corpus.items()]
            elif subset == "queries":
                rows = [{"_id": qid, "text": text} for qid, text in data.queries.items()]
            else:
                rows = [{"query-id": qid, "corpus-id": cid} for qid, cids in data.relevant.items() for cid in sorted(cids)]
            (root / subset / f"{human}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
            files.append(f"  - split: {human}\n    path: {subset}/{human}.jsonl")
        configs.append(f"- config_name: {subset}\n  data_files:\n" + "\n".join(files))
    (root / "README.md").write_text("---\nconfigs:\n" + "\n".join(configs) + "\n---\n")
    return root


def ours(checkpoint: Path, **params) -> dict[str, float]:
    evaluator = build_evaluator(EVALUATORS["nanobeir"].params_model(type="nanobeir", **params), "evaluators[0]")
    metrics = evaluator(load_model(checkpoint))
    assert list(metrics) == evaluator.metric_names(evaluator.params)
    return metrics


def reference(checkpoint: Path, hub_layout: Path, **options) -> dict[str, float]:
    evaluator = NanoBEIREvaluator(dataset_names=list(SETS), dataset_id=str(hub_layout), write_csv=False, **options)
    return evaluator(SentenceTransformer(str(checkpoint), device="cpu"))


@pytest.mark.parametrize("options", [{}, {"truncate_dim": 16, "query_prompts": {"msmarco": "q: ", "scifact": "claim: "}}],
                         ids=str)
def test_nanobeir_matches_the_reference(options, tiny_checkpoint: Path, hub_layout: Path, beir_collection: Path) -> None:
    expected = reference(tiny_checkpoint, hub_layout, **options)
    assert "NanoBEIR_mean_cosine_ndcg@10" in expected or "NanoBEIR_mean_16_cosine_ndcg@10" in expected
    from_hub_layout = ours(tiny_checkpoint, source=str(hub_layout), dataset_names=list(SETS), **options)
    assert list(from_hub_layout) == list(expected)
    assert from_hub_layout == pytest.approx(expected, abs=1e-4)
    from_folders = ours(tiny_checkpoint, source=str(beir_collection), **options)
    assert from_folders == pytest.approx(expected, abs=1e-4)
    assert list(from_folders) == list(expected)


def test_one_beir_folder_is_one_set(tiny_checkpoint: Path, beir_collection: Path) -> None:
    metrics = ours(tiny_checkpoint, source=str(beir_collection / "NanoSciFact"), score_functions=["dot"])
    assert metrics["NanoBEIR_mean_dot_ndcg@10"] == metrics["NanoSciFact_dot_ndcg@10"]


def test_dataset_names_need_a_hub_dataset(beir_collection: Path) -> None:
    params = EVALUATORS["nanobeir"].params_model(type="nanobeir", source=str(beir_collection), dataset_names=["nq"])
    with pytest.raises(DataError, match="dataset_names: applies to hub datasets only"):
        build_evaluator(params, "evaluators[0]")

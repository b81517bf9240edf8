"""Each kind of model (dense, SPLADE, inference-free SPLADE, CSR, cross-encoder) trains 2 steps with an evaluator
through the real engine, on tiny random models the test mirror names by hub ids, and its card says what it is:
huggingface_hub parses it, its model-index holds the evaluator's final metrics from metrics.jsonl, the pipeline tag,
tags and usage snippet fit the kind (the snippet runs on the saved model in sentence-transformers), each training
dataset has its token statistics and sample rows, the plots it links exist as PNGs, and no path of this machine is in
it."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from accelerate.state import AcceleratorState
from helpers.data import PAIRS
from helpers.tiny_cross_encoders import make_tiny_classifier
from huggingface_hub import ModelCard, metadata_load
from PIL import Image
from transformers import AutoTokenizer

from embedtrain.data.mirror import ENV_VAR
from embedtrain.engine.run import run_training
from embedtrain.recipe.schema import Recipe

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]
SPARSE_TAGS = {"sentence-transformers", "sparse-encoder", "sparse"}
PAIR_COLUMNS = {"anchor": "sentence1", "positive": "sentence2"}
KINDS = {
    "dense": {
        "model": {"base": "org/tiny-bert"}, "loss": {"type": "CoSENTLoss"}, "evaluator": "sts", "data": "org/sts",
        "dataset": {}, "pipeline_tag": "sentence-similarity", "usage": "SentenceTransformer",
        "tags": {"sentence-transformers", "sentence-similarity", "feature-extraction", "dense"}},
    "splade": {
        "model": {"base": "org/tiny-mlm", "kind": "sparse", "architecture": "splade"},
        "loss": {"type": "SpladeLoss", "loss": {"type": "SparseMultipleNegativesRankingLoss"},
                 "document_regularizer_weight": 3.0e-3},
        "evaluator": "sparse_sts", "data": "org/sts", "dataset": {"columns": PAIR_COLUMNS, "ignore_columns": ["score"]},
        "pipeline_tag": "feature-extraction", "usage": "SparseEncoder", "tags": SPARSE_TAGS | {"splade"}},
    "inference-free-splade": {
        "model": {"base": "org/tiny-mlm", "kind": "sparse", "architecture": "inference_free_splade"},
        "loss": {"type": "SpladeLoss", "loss": {"type": "SparseMultipleNegativesRankingLoss"},
                 "document_regularizer_weight": 3.0e-3, "query_regularizer_weight": 0},
        "evaluator": "sparse_sts", "data": "org/sts",
        "dataset": {"columns": PAIR_COLUMNS, "ignore_columns": ["score"],
                    "router_mapping": {"anchor": "query", "positive": "document"}},
        "pipeline_tag": "feature-extraction", "usage": "SparseEncoder",
        "tags": SPARSE_TAGS | {"splade", "inference-free", "asymmetric"}},
    "csr": {
        "model": {"base": "org/tiny-bert", "kind": "sparse", "architecture": "csr",
                  "sparse": {"autoencoder": {"k": 16, "k_aux": 32}}},
        "loss": {"type": "CSRLoss", "loss": {"type": "SparseMultipleNegativesRankingLoss"}},
        "evaluator": "sparse_sts", "data": "org/sts", "dataset": {"columns": PAIR_COLUMNS, "ignore_columns": ["score"]},
        "pipeline_tag": "feature-extraction", "usage": "SparseEncoder", "tags": SPARSE_TAGS | {"csr"}},
    "cross-encoder": {
        "model": {"base": "org/tiny-classifier", "kind": "cross_encoder"}, "loss": {"type": "BinaryCrossEntropyLoss"},
        "evaluator": "cross_encoder_correlation", "data": "org/binary", "dataset": {},
        "pipeline_tag": "text-ranking", "usage": "CrossEncoder",
        "tags": {"sentence-transformers", "cross-encoder", "reranker"}},
}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, tiny_checkpoint, tiny_mlm_checkpoint, sts_csv, binary_csv) -> Path:
    classifier = make_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))
    path = tmp_path_factory.mktemp("mirror") / "mirror.yaml"
    path.write_text(yaml.safe_dump({
        "models": {"org/tiny-bert": str(tiny_checkpoint), "org/tiny-mlm": str(tiny_mlm_checkpoint),
                   "org/tiny-classifier": str(classifier)},
        "datasets": {"org/sts": {"train": str(sts_csv)}, "org/binary": {"train": str(binary_csv)}}}), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def offline(monkeypatch, mirror):
    monkeypatch.setenv(ENV_VAR, str(mirror))
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def train(kind: dict, output_dir: Path) -> Path:
    recipe = Recipe.model_validate({
        "model": kind["model"] | {"card": {"language": ["en"], "license": "apache-2.0"}},
        "losses": {"main": kind["loss"]},
        "datasets": {"train": {"pairs": {"source": kind["data"]} | kind["dataset"]}},
        "evaluators": [{"type": kind["evaluator"], "name": "dev", "source": "org/sts"}],
        "training": {"output_dir": str(output_dir), "max_steps": 2, "batch_size": 8, "logging_steps": 1,
                     "save_steps": 1, "learning_rate": 1e-3}})
    return run_training(recipe).final_dir


def last_evaluation(output_dir: Path) -> dict[str, float]:
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [record for record in records if "learning_rate" not in record][-1]


def token_row(tokenizer, firsts: list[str], seconds: list[str] | None, name: str) -> str:
    """The token statistics row the card must show for a column (or a cross-encoder's pairs), measured here."""
    ids = tokenizer(firsts, seconds, add_special_tokens=True, truncation=False)["input_ids"]
    lengths = np.array([len(row) for row in ids])
    return (f"| {name} | {lengths.min()} | {lengths.mean():.2f} | {int(np.percentile(lengths, 95))} | "
            f"{lengths.max()} | 0.0% |")


@pytest.mark.parametrize("name", list(KINDS))
def test_a_card_per_kind_says_what_the_model_is(name, tmp_path, mirror, tiny_checkpoint, sts_csv):
    kind = KINDS[name]
    final = train(kind, tmp_path / "run")
    path = final / "README.md"
    text = path.read_text(encoding="utf-8")

    # huggingface_hub parses the card; the front matter fits the kind
    card, metadata = ModelCard.load(path), metadata_load(path)
    assert metadata["library_name"] == "sentence-transformers" and metadata["pipeline_tag"] == kind["pipeline_tag"]
    assert metadata["base_model"] == kind["model"]["base"] and metadata["datasets"] == [kind["data"]]
    rows = len(PAIRS) * (4 if kind["data"] == "org/sts" else 2)
    losses = {f"loss:{kind['loss']['type']}"} | ({f"loss:{kind['loss']['loss']['type']}"} if "loss" in kind["loss"]
                                                 else set())
    assert kind["tags"] | losses | {"generated_from_trainer", f"dataset_size:{rows}"} <= set(metadata["tags"])
    other_kinds = {"dense", "sparse", "cross-encoder"} - {next(tag for tag in ("dense", "sparse", "cross-encoder")
                                                              if tag in kind["tags"])}
    assert not other_kinds & set(metadata["tags"])
    widget = {"sentence-similarity": [{"source_sentence": PAIRS[0][0], "sentences": [PAIRS[0][1], *PAIRS[1][:2]]}],
              "feature-extraction": [{"text": text} for text in (*PAIRS[0][:2], *PAIRS[1][:2])]}
    assert metadata.get("widget") == widget.get(kind["pipeline_tag"])  # none for a cross-encoder, as the reference

    # the model-index holds every metric of the evaluator's final evaluation, with its value from metrics.jsonl
    evaluation = last_evaluation(tmp_path / "run")
    found = {f"{result.dataset_name}_{result.metric_type}": result.metric_value for result in card.data.eval_results}
    expected = {metric: value for metric, value in evaluation.items() if metric.startswith("dev_")}
    assert found == pytest.approx(expected, rel=1e-9) and expected
    assert {result.dataset_type for result in card.data.eval_results} == {"org/sts"}

    # the usage snippet uses the kind's class and runs on the saved model in sentence-transformers
    code = text.split("```python\n")[1].split("```")[0]
    assert f"from sentence_transformers import {kind['usage']}\n" in code
    namespace: dict = {}
    exec(code.replace("path/to/this/model", str(final)), namespace)  # noqa: S102 - the card's own snippet
    result = namespace["similarities"] if kind["usage"] != "CrossEncoder" else namespace["scores"]
    assert tuple(result.shape) == ((1, 2) if kind["usage"] != "CrossEncoder" else (2,))

    # the training data: its token statistics as measured on its rows, and its first rows
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoint))  # every tiny model shares this vocabulary
    firsts, seconds = [first for first, _, _ in PAIRS * 4], [second for _, second, _ in PAIRS * 4]
    if kind["usage"] == "CrossEncoder":
        firsts, seconds = [first for first, _, _ in PAIRS * 2], [second for _, second, _ in PAIRS * 2]
        assert token_row(tokenizer, firsts, seconds, "sentence1+sentence2") in text
    else:
        assert token_row(tokenizer, firsts, None, "sentence1") in text
        assert token_row(tokenizer, seconds, None, "sentence2") in text
    assert f"| {PAIRS[0][0]} | {PAIRS[0][1]} |" in text
    scores = np.array([score for _, _, score in PAIRS])
    labels = {"org/sts": f"min {scores.min():.4g}, mean {scores.mean():.4g}, max {scores.max():.4g}",
              "org/binary": ", ".join(f"{label}: {2 * count} ({count / len(scores):.0%})"  # PAIRS * 2 rows
                                      for label, count in enumerate(np.bincount(scores >= 0.5)))}
    assert (f"- Label: {labels[kind['data']]}" in text) == ("ignore_columns" not in kind["dataset"])
    assert ("- Label:" in text) == ("ignore_columns" not in kind["dataset"])

    # the plots it links are PNG files in the model folder, and in the run's output directory
    links = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    metric_plots = set(links) - {"plots/loss.png", "plots/learning_rate.png"}
    assert len(links) == 3 and len(metric_plots) == 1  # the loss, the learning rate, the evaluator's primary metric
    assert metric_plots.pop().removeprefix("plots/").removesuffix(".png") in expected
    for link in links:
        with Image.open(final / link) as image:
            assert image.format == "PNG"
        assert (tmp_path / "run" / link).is_file()

    # nothing of this machine's layout
    for local in (str(tmp_path), str(tiny_checkpoint.parent.parent), str(sts_csv.parent), str(mirror.parent),
                  str(Path.home()) + "/", sys.prefix, str(ROOT)):
        assert local not in text, local


def test_without_matplotlib_the_card_says_the_plots_were_skipped(tmp_path, monkeypatch, caplog):
    for module in [module for module in sys.modules if module.split(".")[0] == "matplotlib"] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, module, None)
    final = train(KINDS["dense"], tmp_path / "run")
    text = (final / "README.md").read_text(encoding="utf-8")
    assert "![" not in text and "No plots: matplotlib was not installed" in text
    assert not (final / "plots").exists() and not (tmp_path / "run" / "plots").exists()
    assert len([record for record in caplog.records if "plots skipped" in record.getMessage()]) == 1

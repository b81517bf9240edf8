"""`embedtrain eval` on cross-encoders: a saved cross-encoder (or a plain sequence classifier given cross-encoder
evaluators) is evaluated as one, `--kind cross_encoder` builds one from a plain checkpoint, and an evaluator of
another kind of model exits 2 naming the evaluators that fit.

The cross-encoder evaluator here is a stand-in registered for these tests only (`ce_sts`: the mean predicted score
of the pairs); it declares `model_kinds = ("cross_encoder",)` and calls only `model.predict`, as the cross-encoder
evaluators do.
"""

import json
from pathlib import Path
from typing import ClassVar, Literal

import pytest
from helpers.tiny_cross_encoders import make_tiny_classifier
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.data.contract import ColumnContract
from embedtrain.errors import ExitCode
from embedtrain.evaluation import EVALUATORS, Evaluator, EvaluatorParams, build_evaluator
from embedtrain.evaluation.registry import EvaluatorSpec
from embedtrain.models import load_model, save_model
from embedtrain.models.cross_encoder_io import load_cross_encoder

runner = CliRunner()


class MeanScoreParams(EvaluatorParams):
    type: Literal["ce_sts"]


class MeanScoreEvaluator(Evaluator):
    contract: ClassVar = ColumnContract(inputs=("sentence1", "sentence2"), label="score")
    model_kinds: ClassVar = ("cross_encoder",)
    same_task_as: ClassVar = "sts"

    @classmethod
    def metric_keys(cls, params) -> list[str]:
        return ["mean_score"]

    @classmethod
    def primary_key(cls, params) -> str:
        return "mean_score"

    def compute(self, model) -> dict[str, float]:
        pairs = list(zip(self.columns["sentence1"], self.columns["sentence2"]))
        return {"mean_score": float(model.predict(pairs, batch_size=self.params.batch_size).mean())}


@pytest.fixture(autouse=True)
def cross_encoder_evaluator(monkeypatch):
    monkeypatch.setitem(EVALUATORS, "ce_sts", EvaluatorSpec("ce_sts", MeanScoreParams, MeanScoreEvaluator))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("classifier"), 1)


@pytest.fixture(scope="module")
def saved_cross_encoder(tmp_path_factory, classifier) -> Path:
    path = tmp_path_factory.mktemp("saved-ce") / "model"
    save_model(load_cross_encoder(classifier, activation="identity"), path)
    return path


@pytest.fixture(scope="module")
def saved_dense(tmp_path_factory, tiny_checkpoint) -> Path:
    path = tmp_path_factory.mktemp("saved-dense") / "model"
    save_model(load_model(tiny_checkpoint), path)
    return path


def evaluate(tmp_path: Path, model: Path, *arguments: str) -> dict[str, float]:
    output = tmp_path / "metrics.json"
    result = runner.invoke(app, ["eval", str(model), *arguments, "--output", str(output)])
    assert result.exit_code == 0, result.output
    return json.loads(output.read_text())["metrics"]


def expected(model, source: Path) -> dict[str, float]:
    return build_evaluator(MeanScoreParams(type="ce_sts", name="ce_sts", source=str(source)), "test")(model)


def test_a_saved_cross_encoder_is_evaluated_as_one(tmp_path, saved_cross_encoder, sts_csv):
    metrics = evaluate(tmp_path, saved_cross_encoder, "--evaluator", f"ce_sts={sts_csv}")
    assert metrics == pytest.approx(expected(load_model(saved_cross_encoder), sts_csv), abs=1e-6)


def test_a_plain_sequence_classifier_given_cross_encoder_evaluators_is_one(tmp_path, classifier, sts_csv):
    metrics = evaluate(tmp_path, classifier, "--evaluator", f"ce_sts={sts_csv}")
    assert metrics == pytest.approx(expected(load_cross_encoder(classifier), sts_csv), abs=1e-6)


def test_kind_cross_encoder_builds_one_from_a_plain_encoder(tmp_path, tiny_checkpoint, sts_csv):
    metrics = evaluate(tmp_path, tiny_checkpoint, "--evaluator", f"ce_sts={sts_csv}", "--kind", "cross_encoder")
    assert 0 < metrics["ce_sts_mean_score"] < 1  # a new head: sigmoid scores


@pytest.mark.parametrize("model, arguments, fragments", [
    ("saved_cross_encoder", ["--evaluator", "sts={sts}"],
     ["--evaluator sts: evaluates embeddings", "is a cross-encoder (it is a saved cross-encoder)",
      "use the cross-encoder evaluators (", " for sts)"]),  # ce_sts here; the correlation evaluator once installed
    ("saved_dense", ["--evaluator", "ce_sts={sts}"],
     ["--evaluator ce_sts: cross-encoder evaluators", "is a dense embedding model (it is a saved dense model)",
      "use the embedding evaluators (sts for ce_sts"]),
    ("plain", ["--evaluator", "ce_sts={sts}"],
     ["plain checkpoint without a trained classification head", "pass --kind cross_encoder"]),
    ("saved_cross_encoder", ["--evaluator", "ce_sts={sts}", "--kind", "dense"],
     ["--kind dense:", "is a saved cross-encoder, which keeps its kind; remove --kind"]),
    ("saved_dense", ["--evaluator", "ce_sts={sts}", "--kind", "cross_encoder"],
     ["--kind cross_encoder:", "is a saved dense model, which keeps its kind"]),
    ("plain", ["--evaluator", "sts={sts}", "--kind", "cross_encoder"],
     ["--evaluator sts: evaluates embeddings", "(--kind cross_encoder builds it as one)", "or remove --kind"]),
    ("saved_cross_encoder", ["--evaluator", "ce_sts={sts}", "--evaluator", "sts={sts}"],
     ["cross-encoder evaluators (ce_sts) and embedding-model ones (sts) in one call"]),
], ids=["dense-evaluator-on-cross-encoder", "cross-encoder-evaluator-on-dense", "plain-encoder", "kind-dense-on-saved",
        "kind-cross-encoder-on-saved-dense", "dense-evaluator-with-kind", "mixed"])
def test_kind_mismatches_exit_2_naming_the_fix(model, arguments, fragments, request, tiny_checkpoint, sts_csv):
    path = tiny_checkpoint if model == "plain" else request.getfixturevalue(model)
    result = runner.invoke(app, ["eval", str(path), *[argument.replace("{sts}", str(sts_csv)) for argument in arguments]])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    output = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in output, output

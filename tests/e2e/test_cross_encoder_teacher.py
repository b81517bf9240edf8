"""A cross-encoder as the teacher of `mine --rescore` and `score`: embedtrain's CrossEncoder re-scores mined candidates
exactly as the reference's does inside its `mine_hard_negatives`, `score` writes its predictions (activation applied),
and a cross-encoder that gives class logits, or a `--kind` for one, exits 2."""

import json

import datasets
import pytest
import torch
from helpers.mining import mine_with_embedtrain, mine_with_reference, tiny_pairs
from helpers.mining_scorer import make_tiny_cross_encoder
from helpers.tiny_cross_encoders import make_tiny_classifier
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode
from embedtrain.evaluation.mining.output import sidecar_path
from embedtrain.models import save_model
from embedtrain.models.cross_encoder_io import load_cross_encoder

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def run(*arguments) -> tuple:
    result = runner.invoke(app, [str(argument) for argument in arguments])
    return result, " ".join(result.output.split())


@pytest.mark.parametrize("options", [
    {"relative_margin": 0.05, "output_scores": True},
    {"absolute_margin": 0.0, "range_min": 1, "output_format": "labeled-list", "output_scores": True},
])
def test_rescoring_with_embedtrains_cross_encoder_equals_the_reference(options, tiny_checkpoint, tmp_path):
    reference = make_tiny_cross_encoder(tmp_path / "cross-encoder")
    anchors, positives = tiny_pairs(queries=15)
    ours = mine_with_embedtrain(tiny_checkpoint, anchors, positives, options,
                                rescorer=load_cross_encoder(tmp_path / "cross-encoder"))
    theirs = mine_with_reference(tiny_checkpoint, anchors, positives, options, cross_encoder=reference)
    assert ours.keys() == theirs.keys() and len(next(iter(ours.values()))) > 0
    for column, values in theirs.items():
        if column.endswith("scores") or column == "labels" and isinstance(values[0], list):
            torch.testing.assert_close(torch.tensor(ours[column]), torch.tensor(values), rtol=0, atol=1e-5)
        else:
            assert ours[column] == values, column


@pytest.fixture
def rows(tmp_path):
    anchors, positives = tiny_pairs(queries=6)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"query": a, "positive": p, "negative": positives[-1 - i]}) + "\n"
                            for i, (a, p) in enumerate(zip(anchors, positives))))
    return path


def test_score_writes_the_cross_encoders_predictions(rows, tmp_path):
    teacher = load_cross_encoder(make_tiny_classifier(tmp_path / "classifier", 1))
    save_model(teacher, tmp_path / "teacher")
    output = tmp_path / "scored.jsonl"
    result, _ = run("score", "--data", rows, "--model", tmp_path / "teacher", "--output", output)
    assert result.exit_code == 0, result.output
    scored = datasets.load_dataset("json", data_files=str(output), split="train")
    expected = torch.stack([teacher.predict(list(zip(scored["query"], scored[column])))
                            for column in ("positive", "negative")], dim=1)
    torch.testing.assert_close(torch.tensor(scored["scores"]), expected, rtol=0, atol=1e-6)
    provenance = json.loads(sidecar_path(output).read_text())
    assert provenance["model"] == {"name": "teacher", "kind": "cross-encoder", "activation": "sigmoid"}


@pytest.mark.parametrize("arguments, fragments", [
    ([], ["a cross-encoder with 3 labels gives a logit per class, not one score per pair"]),
    (["--kind", "dense"], ["--kind dense:", "is a cross-encoder (a reranker), which keeps its kind; remove --kind"]),
], ids=["class-logits", "kind"])
def test_a_cross_encoder_teacher_that_cannot_score_exits_2(rows, tmp_path, arguments, fragments):
    labels = 3 if not arguments else 1
    teacher = make_tiny_classifier(tmp_path / "classifier", labels)
    result, shown = run("score", "--data", rows, "--model", teacher, "--output", tmp_path / "out.jsonl", *arguments)
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    for fragment in fragments:
        assert fragment in shown, shown

"""A teacher's logits as distillation labels: `rescore_activation` (a recipe's `mine:` step), `mine
--rescore-activation` and `score --activation` replace a cross-encoder's own activation (a tiny random reranker,
sigmoid by default) by another, e.g. the identity for a dot-product student; the scores written are then that
activation of the teacher's logits, the provenance says which, and an activation for an embedding model (whose
scores are similarities) or without a cross-encoder is refused (exit 2) before anything is mined."""

import json

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from helpers.mining import write_pairs_csv
from helpers.tiny_cross_encoders import make_tiny_classifier
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.evaluation.mining.output import sidecar_path
from embedtrain.models.cross_encoder_io import load_cross_encoder

pytestmark = pytest.mark.usefixtures("one_thread", "fresh_accelerate_state")
runner = CliRunner()


@pytest.fixture(scope="module")
def reranker(tmp_path_factory):
    return make_tiny_classifier(tmp_path_factory.mktemp("reranker"))


@pytest.fixture
def pairs_csv(tmp_path):
    return write_pairs_csv(tmp_path / "pairs.csv", queries=12)


def run(*arguments):
    result = runner.invoke(app, [str(argument) for argument in arguments])
    return result, " ".join(result.output.split())


def teacher_logits(reranker, queries, texts) -> torch.Tensor:
    return load_cross_encoder(reranker).predict(list(zip(queries, texts)), apply_activation=False)


def write_recipe(tmp_path, model, pairs, **mine) -> str:
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "MarginMSELoss"}},
        "datasets": {"train": {"qa": {"source": str(pairs), "mine": {
            "model": str(model), "num_negatives": 2, "range_max": 6, "output_format": "n-tuple",
            "output_scores": True} | mine}}},
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "batch_size": 4, "save_steps": 1},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return str(path)


def test_the_mine_step_writes_the_teachers_logits_and_mines_again_for_another_activation(
        tmp_path, tiny_checkpoint, pairs_csv, reranker):
    recipe = write_recipe(tmp_path, tiny_checkpoint, pairs_csv, rescore=str(reranker), rescore_activation="identity")
    result, shown = run("train", recipe)
    assert result.exit_code == 0, result.output
    [cache] = sorted((tmp_path / "run" / "mined").glob("*.parquet"))
    rows = pq.read_table(cache).to_pylist()
    candidates = ["answer", "negative_1", "negative_2"]
    logits = torch.stack([teacher_logits(reranker, [row["question"] for row in rows], [row[column] for row in rows])
                          for column in candidates], dim=1)
    scores = torch.tensor([row["scores"] for row in rows])
    torch.testing.assert_close(scores, logits, rtol=1e-5, atol=1e-5)
    assert not bool(((scores >= 0) & (scores <= 1)).all())  # logits, not the reranker's own sigmoid
    assert json.loads(sidecar_path(cache).read_text())["rescore_activation"] == "identity"

    # The reranker's own activation (sigmoid) is another set of labels: mined again, into a file of its own.
    result, _ = run("train", recipe, "--resume", "--set", "datasets.train.qa.mine.rescore_activation=null")
    assert result.exit_code == 0, result.output
    [again] = [path for path in (tmp_path / "run" / "mined").glob("*.parquet") if path != cache]
    torch.testing.assert_close(torch.tensor(pq.read_table(again).column("scores").to_pylist()), torch.sigmoid(logits),
                               rtol=1e-5, atol=1e-5)
    assert json.loads(sidecar_path(again).read_text())["rescore_activation"] == "sigmoid"


def test_an_activation_without_a_cross_encoder_is_refused_before_mining(tmp_path, tiny_checkpoint, pairs_csv):
    recipe = write_recipe(tmp_path, tiny_checkpoint, pairs_csv, rescore_activation="identity")
    result, shown = run("train", recipe, "--dry-run")
    assert result.exit_code == 2, result.output
    assert "datasets.train.qa.mine" in shown and "rescore_activation applies to the scores of a `rescore`" in shown

    recipe = write_recipe(tmp_path, tiny_checkpoint, pairs_csv, rescore=str(tiny_checkpoint), rescore_kind="dense",
                          rescore_activation="identity")  # an embedding model re-scores by similarity
    result, shown = run("train", recipe)
    assert result.exit_code == 2, result.output
    assert "datasets.train.qa.mine.rescore_activation identity" in shown and "is an embedding model" in shown
    assert not (tmp_path / "run" / "mined").exists() or not any((tmp_path / "run" / "mined").glob("*.parquet"))

    output = tmp_path / "mined.parquet"
    result, shown = run("mine", "--data", pairs_csv, "--model", tiny_checkpoint, "--output", output,
                        "--rescore-activation", "identity")
    assert result.exit_code == 2 and "add --rescore, or remove --rescore-activation" in shown, result.output
    assert not output.exists()


def test_mine_and_score_write_the_logits_with_the_activation_option(tmp_path, tiny_checkpoint, pairs_csv, reranker):
    mined = tmp_path / "mined.parquet"
    result, _ = run("mine", "--data", pairs_csv, "--model", tiny_checkpoint, "--output", mined, "--rescore", reranker,
                    "--rescore-activation", "identity", "--num-negatives", "1", "--output-scores")
    assert result.exit_code == 0, result.output
    rows = pq.read_table(mined).to_pylist()
    assert json.loads(sidecar_path(mined).read_text())["rescore_activation"] == "identity"

    scored = tmp_path / "scored.jsonl"
    result, _ = run("score", "--data", mined, "--model", reranker, "--output", scored, "--activation", "identity",
                    "--replace-label", "--margins")
    assert result.exit_code == 0, result.output
    margins = [json.loads(line)["label"] for line in scored.read_text().splitlines()]
    # The same logits either way: mining's [positive, negative] scores give score's margins.
    torch.testing.assert_close(torch.tensor(margins), torch.tensor([[row["scores"][0] - row["scores"][1]]
                                                                    for row in rows]), rtol=1e-5, atol=1e-5)
    assert json.loads(sidecar_path(scored).read_text())["model"]["activation"] == "identity"

    result, shown = run("score", "--data", mined, "--model", tiny_checkpoint, "--output", tmp_path / "other.jsonl",
                        "--activation", "identity", "--replace-label")
    assert result.exit_code == 2 and "--activation identity: --model" in shown and "is an embedding model" in shown


def test_the_command_line_offers_every_activation_a_cross_encoder_has():
    from typing import get_args

    from embedtrain.cli.mining import CrossEncoderActivation
    from embedtrain.modules.dense import Activation

    assert {choice.value for choice in CrossEncoderActivation} == set(get_args(Activation))

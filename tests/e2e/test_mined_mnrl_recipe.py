"""The shipped wikiqa-mined-mnrl recipe's `mine:` step for real, offline through the test mirror (microsoft/wiki_qa ->
TrecQA's labelled train pairs): all-MiniLM-L6-v2 mines each question's negatives from every candidate answer of the
split, and what it mines is what the recipe promises: for every correct answer a row whose negatives are never a
correct answer of the question, and mostly the question's own judged wrong answers (the dataset's labelled negatives,
found without reading a label-0 row as a negative). The training figures (README, "Hard negatives on TrecQA") take
minutes and stay there with their commands; here one step trains on the mined rows.
"""

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers.data import SHARED_DATA
from typer.testing import CliRunner

from embedtrain.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("offline_mirror")]
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "wikiqa-mined-mnrl.yaml"
runner = CliRunner()


def test_the_recipe_mines_each_question_s_own_wrong_answers_and_never_a_right_one(tmp_path):
    result = runner.invoke(app, ["train", str(RECIPE), "--output-dir", str(tmp_path / "run"), "--set", "evaluators=[]",
                                 "--set", "training.max_steps=1"])
    assert result.exit_code == 0, result.output
    [mined] = (tmp_path / "run" / "mined").glob("*.parquet")
    rows = pq.read_table(mined).to_pylist()

    with (SHARED_DATA / "trecqa" / "train_pairs.csv").open(encoding="utf-8", newline="") as file:
        labels = {(row["question"], row["answer"]): row["label"] for row in csv.DictReader(file)}
    positives = sum(label == "1" for label in labels.values())
    negatives = [(row["question"], text) for row in rows for column, text in row.items()
                 if column.startswith("negative")]
    assert len(rows) == positives == 348  # a row for every correct answer (83 questions have one)
    assert all(labels[row["question"], row["answer"]] == "1" for row in rows)
    assert not [negative for negative in negatives if labels.get(negative) == "1"]
    own_wrong_answers = sum(labels.get(negative) == "0" for negative in negatives)
    assert own_wrong_answers >= 0.8 * len(negatives)  # measured: 86% (the rest: other questions' candidates)

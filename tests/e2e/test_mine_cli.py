"""`embedtrain mine` and `embedtrain score` from the command line: what they write (rows, provenance without local
paths), that the rows are the input of the losses they are for (`validate-dataset`), the summary they print, and the
options that change the search (sparse models, faiss, re-scoring)."""

import csv
import json
import sys
from collections import Counter

import datasets
import pytest
import torch
from helpers.mining import extra_corpus, tiny_pairs
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode
from embedtrain.evaluation.mining.output import sidecar_path
from embedtrain.evaluation.mining.scoring import BiEncoderScorer
from embedtrain.models.io import load_model

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


@pytest.fixture
def labelled_pairs(tmp_path):
    """question,answer,label rows: the tiny pairs (label 1), some label-0 answers and a question without a positive."""
    anchors, positives = tiny_pairs(queries=12)
    rows = [(a, p, 1) for a, p in zip(anchors, positives)]
    rows += [(anchors[index * 3], text, 0) for index, text in enumerate(extra_corpus(4))]
    rows.append(("a question nobody answered", "not an answer", 0))
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("question", "answer", "label"), *rows])
    return path


def run(*arguments: str):
    result = runner.invoke(app, [str(argument) for argument in arguments])
    return result, " ".join(result.output.split())


def read_rows(path) -> datasets.Dataset:
    builder = "parquet" if path.suffix == ".parquet" else "json"
    return datasets.load_dataset(builder, data_files=str(path), split="train")


def test_mine_writes_triplets_and_their_provenance(labelled_pairs, tiny_checkpoint, tmp_path):
    output = tmp_path / "out" / "mined.parquet"
    result, shown = run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", output)
    assert result.exit_code == 0, result.output
    rows = read_rows(output)
    assert rows.column_names == ["question", "answer", "negative"]
    assert len(rows) > 0 and all(row["negative"] != row["answer"] for row in rows)
    sidecar_text = sidecar_path(output).read_text()
    assert str(tmp_path) not in sidecar_text  # no path of this machine
    provenance = json.loads(sidecar_text)
    assert provenance["model"] == {"name": tiny_checkpoint.name, "kind": "dense", "similarity": "cosine"}
    assert provenance["data"]["source"] == "pairs.csv"
    assert provenance["data"]["columns"] == {"anchor": "question", "positive": "answer", "label": "label"}
    assert provenance["data"]["fingerprint"].startswith("sha256:")
    most_positive_rows = max(Counter(tiny_pairs(queries=12)[0]).values())
    assert provenance["options"]["num_negatives"] == 3
    assert provenance["options"]["range_max"] == 3 + most_positive_rows  # the reference's default
    summary = provenance["summary"]
    assert summary["queries"] == 13 and summary["queries_mined"] == 12
    assert summary["skipped"] == {"no positive": 1}
    assert summary["rows"] == len(rows)
    for fragment in ("queries skipped", "1 (7.7%)", "no positive", "positive - negative", "rows written"):
        assert fragment in shown, shown


def test_the_same_data_gives_the_same_fingerprint_and_rows(labelled_pairs, tiny_checkpoint, tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for output in (first, second):
        assert run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", output)[0].exit_code == 0
    assert first.read_text() == second.read_text()
    fingerprints = [json.loads(sidecar_path(path).read_text())["data"]["fingerprint"] for path in (first, second)]
    assert fingerprints[0] == fingerprints[1]


def test_an_existing_output_is_replaced_only_with_force(labelled_pairs, tiny_checkpoint, tmp_path):
    output = tmp_path / "mined.jsonl"
    output.write_text("keep me\n")
    result, shown = run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", output)
    assert result.exit_code == ExitCode.INVALID_INPUT and "pass --force" in shown
    assert output.read_text() == "keep me\n" and not sidecar_path(output).exists()
    result, _ = run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", output, "--force")
    assert result.exit_code == 0, result.output
    assert output.read_text() != "keep me\n"


def test_mined_n_tuples_feed_mnrl_and_scored_ones_margin_mse(labelled_pairs, tiny_checkpoint, tmp_path):
    mined, scored = tmp_path / "mined.parquet", tmp_path / "scored.jsonl"
    result, _ = run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", mined,
                    "--output-format", "n-tuple", "--num-negatives", "2")
    assert result.exit_code == 0, result.output
    assert read_rows(mined).column_names == ["question", "answer", "negative_1", "negative_2"]
    validation, _ = run("validate-dataset", "--data", mined, "--loss", "MultipleNegativesRankingLoss")
    assert validation.exit_code == 0, validation.output
    result, shown = run("score", "--data", mined, "--model", tiny_checkpoint, "--output", scored)
    assert result.exit_code == 0, result.output
    assert "column 'scores'" in shown and "positive - negative" in shown
    rows = read_rows(scored)
    assert rows.column_names == ["question", "answer", "negative_1", "negative_2", "scores"]
    assert all(len(row["scores"]) == 3 for row in rows)
    for loss in ("MarginMSELoss", "DistillKLDivLoss"):
        validation, _ = run("validate-dataset", "--data", scored, "--loss", loss)
        assert validation.exit_code == 0, validation.output
    # The scores are the bi-encoder's similarity of each question with each candidate.
    scorer = BiEncoderScorer(load_model(tiny_checkpoint))
    first = rows[0]
    expected = scorer.predict([(first["question"], first[column]) for column in ("answer", "negative_1", "negative_2")],
                              batch_size=8)
    torch.testing.assert_close(torch.tensor(first["scores"]), expected, rtol=0, atol=1e-5)


def test_score_writes_margins_or_one_score_per_pair(labelled_pairs, tiny_checkpoint, tmp_path, caplog):
    mined, margins = tmp_path / "mined.parquet", tmp_path / "margins.parquet"
    assert run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", mined,
               "--output-format", "n-tuple", "--num-negatives", "2", "--output-scores")[0].exit_code == 0
    caplog.clear()
    result, _ = run("score", "--data", mined, "--model", tiny_checkpoint, "--output", margins, "--margins",
                    "--replace-label", "--kind", "dense")
    assert result.exit_code == 0, result.output
    assert "plain checkpoint" not in caplog.text  # said to be intended
    with_scores, with_margins = read_rows(mined), read_rows(margins)
    assert with_margins.column_names == ["question", "answer", "negative_1", "negative_2", "label"]
    expected = [[row["scores"][0] - row["scores"][1], row["scores"][0] - row["scores"][2]] for row in with_scores]
    torch.testing.assert_close(torch.tensor(with_margins["label"]), torch.tensor(expected), rtol=0, atol=1e-5)
    pairs, scored_pairs = tmp_path / "pairs.jsonl", tmp_path / "scored-pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": row["question"], "text": row["answer"]}) + "\n"
                             for row in with_scores))
    result, _ = run("score", "--data", pairs, "--model", tiny_checkpoint, "--output", scored_pairs)
    assert result.exit_code == 0, result.output
    warning = " ".join(caplog.text.split())
    assert "is a plain checkpoint (no modules.json): it embeds with mean pooling" in warning and "--kind dense" in warning
    assert read_rows(scored_pairs).column_names == ["query", "text", "score"]
    torch.testing.assert_close(torch.tensor(read_rows(scored_pairs)["score"]),
                               torch.tensor([row["scores"][0] for row in with_scores]), rtol=0, atol=1e-5)


def test_labeled_list_output_and_a_separate_corpus(labelled_pairs, tiny_checkpoint, tmp_path):
    corpus, output = tmp_path / "corpus.jsonl", tmp_path / "lists.jsonl"
    corpus.write_text("".join(json.dumps({"_id": str(index), "text": text}) + "\n"
                              for index, text in enumerate(extra_corpus(30))))
    result, shown = run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", output,
                        "--corpus", corpus, "--corpus-column", "text", "--output-format", "labeled-list")
    assert result.exit_code == 0, result.output
    rows = read_rows(output)
    assert rows.column_names == ["question", "answer", "labels"]
    assert all(row["labels"][0] == 1 and set(row["labels"][1:]) == {0} for row in rows)
    provenance = json.loads(sidecar_path(output).read_text())
    assert provenance["corpus"]["source"] == "corpus.jsonl" and provenance["corpus"]["texts"] == 30
    assert provenance["summary"]["corpus"] > 30  # the positives join the corpus


def test_a_sparse_model_mines_by_its_dot_product(labelled_pairs, tiny_mlm_checkpoint, tmp_path):
    """--kind sparse builds SPLADE from a masked-LM checkpoint; each query's negative is its highest-scoring text
    that is not one of its positives."""
    output = tmp_path / "sparse.jsonl"
    result, _ = run("mine", "--data", labelled_pairs, "--model", tiny_mlm_checkpoint, "--kind", "sparse",
                    "--output", output, "--num-negatives", "1", "--output-scores")
    assert result.exit_code == 0, result.output
    provenance = json.loads(sidecar_path(output).read_text())
    assert provenance["model"]["kind"] == "sparse" and provenance["model"]["similarity"] == "dot"
    from embedtrain.models.build_sparse import build_sparse_model
    from embedtrain.models.config import ModelConfig

    model = build_sparse_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse"))
    with labelled_pairs.open(newline="", encoding="utf-8") as handle:
        positive_rows = [row for row in csv.DictReader(handle) if row["label"] == "1"]
    corpus = list(dict.fromkeys(row["answer"] for row in positive_rows))
    scores = model.similarity(model.encode_query([positive_rows[0]["question"]]), model.encode_document(corpus))[0]
    own = {row["answer"] for row in positive_rows if row["question"] == positive_rows[0]["question"]}
    best = max((text for text in corpus if text not in own), key=lambda text: float(scores[corpus.index(text)]))
    first = read_rows(output)[0]
    assert first["negative"] == best
    assert first["scores"][1] == pytest.approx(float(scores[corpus.index(best)]), abs=1e-4)


def test_rescoring_with_another_model_uses_its_scores(labelled_pairs, tiny_checkpoint, second_tiny_checkpoint,
                                                      tmp_path):
    output = tmp_path / "rescored.jsonl"
    result, shown = run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--rescore",
                        second_tiny_checkpoint, "--rescore-kind", "dense", "--output", output, "--output-scores",
                        "--num-negatives", "2")
    assert result.exit_code == 0, result.output
    assert f"re-scored by {second_tiny_checkpoint.name}" in shown
    teacher = BiEncoderScorer(load_model(second_tiny_checkpoint))
    for row in list(read_rows(output))[:4]:
        expected = teacher.predict([(row["question"], row["answer"]), (row["question"], row["negative"])], 8)
        torch.testing.assert_close(torch.tensor(row["scores"]), expected, rtol=0, atol=1e-5)
    provenance = json.loads(sidecar_path(output).read_text())
    assert provenance["rescore_model"] == second_tiny_checkpoint.name and provenance["rescore_kind"] == "dense"


def test_faiss_search_without_faiss_says_how_to_install_it(labelled_pairs, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    output = tmp_path / "mined.parquet"
    result, shown = run("mine", "--data", labelled_pairs, "--model", tiny_checkpoint, "--output", output,
                        "--search", "faiss")
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "pip install 'embedtrain[faiss]'" in shown
    assert not output.exists()

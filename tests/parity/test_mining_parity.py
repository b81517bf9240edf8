"""Mining gives the reference's `mine_hard_negatives` output: the same rows (texts equal), the same scores (1e-5),
for the same model, data and options (exact search), in every output format and with every filter; a seeded random
draw draws the same negatives; re-scoring with a cross-encoder keeps the same ones.

The tiny random BERT is loaded by both libraries from the same checkpoint; the slow case mines the TrecQA train pairs
with all-MiniLM-L6-v2 (the reference given the label-1 rows, embedtrain the labelled file as it is)."""

import csv
import random

import pytest
import torch
from helpers.data import SHARED_DATA
from helpers.mining import extra_corpus, mine_with_embedtrain, mine_with_reference, tiny_pairs
from helpers.mining_scorer import ReferenceCrossEncoderScorer, make_tiny_cross_encoder

from embedtrain.models.io import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


def assert_same_rows(ours: dict[str, list], theirs: dict[str, list]) -> None:
    assert list(ours) == list(theirs)
    for column, values in theirs.items():
        assert len(ours[column]) == len(values), column
        if column in ("scores", "score"):
            torch.testing.assert_close(torch.tensor(ours[column], dtype=torch.float64),
                                       torch.tensor(values, dtype=torch.float64), rtol=0, atol=1e-5)
        else:
            assert ours[column] == values, column


OPTION_SETS = {
    "defaults": {},
    "range": {"num_negatives": 5, "range_min": 3, "range_max": 20},
    "relative margin": {"relative_margin": 0.02, "num_negatives": 4},
    "absolute margin, max score, n-tuple with scores": {"absolute_margin": 0.0, "max_score": 0.95,
                                                        "output_format": "n-tuple", "output_scores": True},
    "min score, labeled-pair": {"min_score": 0.8, "range_max": 30, "output_format": "labeled-pair"},
    "labeled-pair with scores": {"output_format": "labeled-pair", "output_scores": True, "num_negatives": 2},
    "labeled-list": {"output_format": "labeled-list", "range_min": 2, "relative_margin": 0.01},
    "labeled-list with scores": {"output_format": "labeled-list", "output_scores": True, "num_negatives": 4},
    "triplet with scores, small chunks": {"output_scores": True, "num_negatives": 2, "chunk_size": 7},
    "random sampling": {"sampling": "random", "range_max": 25, "num_negatives": 4, "seed": 12,
                        "output_scores": True},
    "random sampling with a margin": {"sampling": "random", "relative_margin": 0.01, "num_negatives": 3, "seed": 3},
    "prompts": {"query_prompt": "query: ", "corpus_prompt": "document: ", "output_scores": True},
}


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=OPTION_SETS)
def test_mined_rows_equal_the_reference(options, tiny_checkpoint):
    anchors, positives = tiny_pairs()
    ours = mine_with_embedtrain(tiny_checkpoint, anchors, positives, options)
    theirs = mine_with_reference(tiny_checkpoint, anchors, positives, options)
    assert_same_rows(ours, theirs)
    assert len(next(iter(ours.values()))) > 0


@pytest.mark.parametrize("options", [{}, {"relative_margin": 0.02, "output_format": "n-tuple", "output_scores": True}])
def test_a_separate_corpus_equals_the_reference(options, tiny_checkpoint):
    anchors, positives = tiny_pairs(queries=20)
    corpus = extra_corpus() + positives[:5]  # some positives in the corpus too: deduplicated, as the reference does
    ours = mine_with_embedtrain(tiny_checkpoint, anchors, positives, options, corpus=corpus)
    theirs = mine_with_reference(tiny_checkpoint, anchors, positives, options, corpus=corpus)
    assert_same_rows(ours, theirs)


def test_labelled_pairs_mine_as_their_positive_rows(tiny_checkpoint):
    """Label-0 rows are not positives: the result is the reference's on the label-1 rows alone."""
    anchors, positives = tiny_pairs(queries=20)
    draw = random.Random(5)
    labels = [1] * len(anchors)
    negatives = extra_corpus(15)
    mixed = sorted(zip(anchors + [draw.choice(anchors) for _ in negatives] + ["a query without positive"],
                       positives + negatives + ["an answer"], labels + [0] * len(negatives) + [0]),
                   key=lambda row: draw.random())
    # The reference's order of queries and positives is that of the label-1 rows.
    kept = [(anchor, positive) for anchor, positive, label in mixed if label == 1]
    ours = mine_with_embedtrain(tiny_checkpoint, [a for a, _, _ in mixed], [p for _, p, _ in mixed], {},
                                labels=[label for _, _, label in mixed])
    theirs = mine_with_reference(tiny_checkpoint, [a for a, _ in kept], [p for _, p in kept], {})
    assert_same_rows(ours, theirs)


@pytest.mark.parametrize("options", [
    {"relative_margin": 0.05, "output_scores": True},
    {"absolute_margin": 0.0, "range_min": 1, "output_format": "labeled-list", "output_scores": True},
])
def test_rescoring_with_a_cross_encoder_equals_the_reference(options, tiny_checkpoint, tmp_path):
    """The reference re-scores only when a filter is set; with one, both keep the cross-encoder's choice."""
    cross_encoder = make_tiny_cross_encoder(tmp_path / "cross-encoder")
    anchors, positives = tiny_pairs(queries=15)
    scorer = ReferenceCrossEncoderScorer(cross_encoder)
    ours = mine_with_embedtrain(tiny_checkpoint, anchors, positives, options, rescorer=scorer)
    theirs = mine_with_reference(tiny_checkpoint, anchors, positives, options, cross_encoder=cross_encoder)
    assert_same_rows(ours, theirs)
    assert len(next(iter(ours.values()))) > 0
    assert ours != mine_with_embedtrain(tiny_checkpoint, anchors, positives, options)  # the cross-encoder decided


def test_faiss_search_finds_what_the_exact_search_finds(tiny_checkpoint):
    pytest.importorskip("faiss")  # the faiss extra; `make install` installs it
    anchors, positives = tiny_pairs()
    model = load_model(tiny_checkpoint)
    options = {"relative_margin": 0.01, "output_scores": True, "chunk_size": 8}
    exact = mine_with_embedtrain(tiny_checkpoint, anchors, positives, options, model=model)
    with_faiss = mine_with_embedtrain(tiny_checkpoint, anchors, positives, options | {"search": "faiss"}, model=model)
    assert_same_rows(with_faiss, exact)


def trecqa_positive_pairs() -> tuple[list[str], list[str], list[int]]:
    with (SHARED_DATA / "trecqa" / "train_pairs.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["question"] for row in rows], [row["answer"] for row in rows], [int(row["label"]) for row in rows]


TRECQA_OPTIONS = {
    "defaults": {},
    "range 5-50, relative margin 0.05, n-tuple with scores": {"range_min": 5, "range_max": 50, "relative_margin": 0.05,
                                                              "output_format": "n-tuple", "output_scores": True},
    "absolute margin 0.1, labeled-list": {"absolute_margin": 0.1, "num_negatives": 5, "output_format": "labeled-list"},
    "random, range 5-50, relative margin 0.05": {"range_min": 5, "range_max": 50, "relative_margin": 0.05,
                                                 "sampling": "random", "seed": 1},
}


@pytest.mark.slow
@pytest.mark.parametrize("options", TRECQA_OPTIONS.values(), ids=TRECQA_OPTIONS)
def test_trecqa_with_minilm_equals_the_reference(options, minilm_path):
    anchors, answers, labels = trecqa_positive_pairs()
    ours = mine_with_embedtrain(minilm_path, anchors, answers, options, labels=labels)
    positive = [label == 1 for label in labels]
    theirs = mine_with_reference(minilm_path, [a for a, keep in zip(anchors, positive) if keep],
                                 [p for p, keep in zip(answers, positive) if keep], options)
    assert_same_rows(ours, theirs)

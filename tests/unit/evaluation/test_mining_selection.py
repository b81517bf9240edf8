"""The mining rules on hand-made candidate scores: which candidates become negatives, how each rule is counted, the
output formats, and why a query is skipped."""

import re

import pydantic
import pytest
import torch

from embedtrain.evaluation.mining.formats import output_columns
from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.evaluation.mining.pairs import PairRows, prepare_input
from embedtrain.evaluation.mining.selection import select_negatives
from embedtrain.evaluation.mining.summary import NO_POSITIVE, TOO_FEW_CANDIDATES, summarise

# Two queries over a corpus of 8 texts; query 0's positive is row 0, query 1's are rows 4 and 5.
ROWS = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [4, 6, 5, 7, 1, 0, 2, 3]])
SCORES = torch.tensor([[0.90, 0.85, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30],
                       [0.95, 0.94, 0.90, 0.60, 0.50, 0.40, 0.30, 0.20]])
POSITIVES = [[0], [4, 5]]
LOWEST = torch.tensor([0.90, 0.90])


def select(**options):
    chosen = MiningOptions(**options)
    return select_negatives(SCORES, ROWS, POSITIVES, LOWEST, chosen, chosen.range_max or 8)


def negatives(selection) -> list[list[int]]:
    return [[row for row in query if row >= 0] for query in selection.negatives.tolist()]


def test_top_sampling_takes_the_best_candidates_that_are_not_positives():
    selection = select(num_negatives=3)
    assert negatives(selection) == [[1, 2, 3], [6, 7, 1]]
    assert selection.removed["positive"].tolist() == [1, 2]
    assert selection.pool.tolist() == [7, 6]


def test_range_min_counts_ranks_after_the_filters():
    # Within 0.08 of the lowest positive (0.90): row 1 (0.85) for query 0, row 6 (0.94) for query 1. Of what is
    # left, best first, the first two are skipped.
    selection = select(num_negatives=2, range_min=2, absolute_margin=0.08)
    assert negatives(selection) == [[4, 5], [0, 2]]
    assert selection.removed["absolute_margin"].tolist() == [1, 1]


def test_range_max_bounds_the_window():
    selection = select(num_negatives=2, range_min=4, range_max=6)
    assert negatives(selection) == [[5, 6], [2, 3]]
    assert selection.found.tolist() == [2, 2]


def test_relative_margin_uses_the_magnitude_of_the_positive_score():
    """A negative lowest positive score must not raise the bar (the reference's #3819): -0.5 with margin 0.1 keeps
    candidates below -0.55."""
    scores = torch.tensor([[-0.50, -0.52, -0.56, -0.60]])
    chosen = MiningOptions(num_negatives=2, relative_margin=0.1)
    selection = select_negatives(scores, torch.tensor([[0, 1, 2, 3]]), [[0]], torch.tensor([-0.5]), chosen, 4)
    assert negatives(selection) == [[2, 3]]
    assert selection.removed["relative_margin"].tolist() == [1]


def test_each_candidate_is_counted_under_the_first_rule_that_removes_it():
    selection = select(num_negatives=1, absolute_margin=0.0, max_score=0.5, min_score=0.35)
    # Query 1's positives (0.95, 0.90) count as positives, not as above the margin; row 6 (0.94) is above it.
    assert selection.removed["positive"].tolist() == [1, 2]
    assert selection.removed["absolute_margin"].tolist() == [0, 1]
    assert selection.removed["max_score"].tolist() == [4, 1]
    assert selection.removed["min_score"].tolist() == [1, 2]
    assert negatives(selection) == [[5], [1]]


def test_random_sampling_draws_within_the_window_reproducibly():
    first = select(num_negatives=2, range_max=6, sampling="random", seed=4)
    again = select(num_negatives=2, range_max=6, sampling="random", seed=4)
    assert torch.equal(first.negatives, again.negatives)
    allowed = [{1, 2, 3, 4, 5, 6}, {6, 7, 1, 0, 2, 3}]
    for found, window in zip(negatives(first), allowed):
        assert len(found) == 2 and set(found) <= window
    # best score first, as with top sampling
    for query, found in enumerate(negatives(first)):
        ranks = [ROWS[query].tolist().index(row) for row in found]
        assert ranks == sorted(ranks)


def test_a_query_short_of_candidates_gets_fewer_negatives():
    selection = select(num_negatives=3, max_score=0.75)
    assert negatives(selection) == [[3, 4, 5], [7, 1, 0]]
    selection = select(num_negatives=3, max_score=0.45)
    assert negatives(selection) == [[6, 7], [0, 2, 3]]


def pairs_input():
    rows = PairRows(anchors=["q0", "q1", "q1", "q2", "q0"], positives=["t0", "t4", "t5", "t9", "t0"],
                    labels=[1, 1, 1, 0, 1], anchor_column="query", positive_column="answer", label_column="label")
    return prepare_input(rows, corpus=["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"])


def test_prepare_input_deduplicates_and_counts_queries_without_a_positive():
    data = pairs_input()
    assert data.queries == ["q0", "q1"]
    assert data.positives == [[0], [4, 5]]
    assert data.positive_rows == [2, 2]  # the repeated (q0, t0) row counts, as the reference counts rows
    assert data.queries_without_positive == 1  # q2 has only a label-0 row
    assert data.corpus == ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]


@pytest.mark.parametrize(("output_format", "scores", "expected"), [
    ("triplet", False, {"query": ["q0", "q0", "q1", "q1", "q1", "q1"],
                        "answer": ["t0", "t0", "t4", "t4", "t5", "t5"],
                        "negative": ["t1", "t2", "t6", "t7", "t6", "t7"]}),
    ("n-tuple", True, {"query": ["q0"], "answer": ["t0"], "negative_1": ["t1"], "negative_2": ["t2"],
                       "scores": [[0.9, 0.85, 0.8]]}),
    ("labeled-pair", False, {"query": ["q0", "q0", "q0", "q1", "q1", "q1"],
                             "answer": ["t0", "t1", "t2", "t4", "t5", "t6"], "label": [1, 0, 0, 1, 1, 0]}),
    ("labeled-list", True, {"query": ["q0", "q1", "q1"], "answer": [["t0", "t1", "t2"], ["t4", "t6"], ["t5", "t6"]],
                            "scores": [[0.9, 0.85, 0.8], [0.95, 0.94], [0.9, 0.94]]}),
])
def test_output_formats(output_format, scores, expected):
    data = pairs_input()
    columns = output_columns(data, [[1, 2], [6, 7]] if output_format == "triplet" else [[1, 2], [6]],
                             [[0.85, 0.8], [0.94, 0.6]] if output_format == "triplet" else [[0.85, 0.8], [0.94]],
                             [0.9, 0.95, 0.9], MiningOptions(num_negatives=2, output_format=output_format,
                                                            output_scores=scores))
    assert columns == expected


def test_summary_says_why_queries_were_skipped():
    data = pairs_input()
    options = MiningOptions(num_negatives=6, max_score=0.45, output_format="n-tuple")
    selection = select_negatives(SCORES, ROWS, data.positives, LOWEST, options, 8)
    summary = summarise(3, data.positives, len(data.corpus), 0, selection, torch.tensor([0.9, 0.95, 0.9]), options, 8)
    # Both queries have enough candidates (7 and 6) for 6 negatives; max_score leaves them 2 and 3.
    assert summary.skipped == {NO_POSITIVE: 1, "max_score": 2}
    assert summary.queries_skipped == 3 and summary.skipped_share == 1.0
    options = MiningOptions(num_negatives=7, output_format="n-tuple")
    selection = select_negatives(SCORES, ROWS, data.positives, LOWEST, options, 8)
    summary = summarise(3, data.positives, len(data.corpus), 1, selection, torch.tensor([0.9, 0.95, 0.9]), options, 8)
    assert summary.skipped == {NO_POSITIVE: 1, TOO_FEW_CANDIDATES: 1}  # query 1 has only 6 texts that are not its own
    assert summary.negatives == 7 + 6 and summary.queries_short == 1


def test_default_range_max_follows_the_reference():
    assert MiningOptions(num_negatives=3).candidate_range(most_positives=2, rescored=False) == 5
    assert MiningOptions(num_negatives=3, range_min=4, relative_margin=0.1).candidate_range(2, False) == 36
    assert MiningOptions(num_negatives=3, min_score=0.1).candidate_range(2, False) == 5
    assert MiningOptions(num_negatives=3, min_score=0.1).candidate_range(2, True) == 32
    assert MiningOptions(num_negatives=3, range_max=9).candidate_range(2, True) == 9


@pytest.mark.parametrize(("options", "message"), [
    ({"num_negatives": 5, "range_min": 2, "range_max": 6}, "num_negatives (5) is larger than the 4 candidates"),
    ({"range_min": 6, "range_max": 6}, "range_min (6) must be smaller than range_max (6)"),
    ({"min_score": 0.5, "max_score": 0.4}, "min_score (0.5) must be smaller than max_score (0.4)"),
])
def test_impossible_options_are_refused(options, message):
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        MiningOptions(**options)

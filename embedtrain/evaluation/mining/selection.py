"""Which candidates become negatives: the reference's rules (see options.py), applied to every query at once.

A candidate removed by a rule is counted under the first rule that removes it, in the reference's order:
the query's own positives, absolute_margin, relative_margin, max_score, min_score.
"""

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from embedtrain.evaluation.mining.options import MiningOptions

RULES = ("positive", "absolute_margin", "relative_margin", "max_score", "min_score")


@dataclass(frozen=True)
class Selection:
    negatives: Tensor
    """(queries, num_negatives): the corpus rows of each query's negatives, best score first; -1 past the last one a
    query has."""
    scores: Tensor
    """(queries, num_negatives): their scores (NaN past the last one)."""
    removed: dict[str, Tensor]
    """Per rule: how many candidates of each query it removed, (queries,)."""
    pool: Tensor
    """Per query: its candidates that are not its own positives, before any filter, (queries,)."""

    @property
    def found(self) -> Tensor:
        """(queries,): the number of negatives of each query."""
        return (self.negatives >= 0).sum(dim=1)


def select_negatives(scores: Tensor, rows: Tensor, positives: list[list[int]], lowest_positive: Tensor,
                     options: MiningOptions, range_max: int) -> Selection:
    """scores, rows: (queries, candidates), best first; lowest_positive: (queries,) the lowest score of each
    query's positives, from the same scorer as `scores`."""
    removed_any = torch.zeros_like(scores, dtype=torch.bool)
    removed = {}
    for rule, condition in _conditions(scores, rows, positives, lowest_positive, options):
        newly = condition & ~removed_any
        removed[rule] = newly.sum(dim=1)
        removed_any |= newly
    # The candidates left, best first; a stable sort keeps the search's order (ties by corpus row) among equals.
    order = scores.masked_fill(removed_any, -torch.inf).sort(dim=1, descending=True, stable=True).indices
    # Ranks range_min .. range_max of what is left: the window each query's negatives come from.
    window = ((~removed_any).sum(dim=1).clamp(max=range_max) - options.range_min).clamp(min=0)
    positions = _positions(window, options)
    kept = positions >= 0
    columns = order.gather(1, (positions + options.range_min).clamp(max=scores.size(1) - 1) * kept)
    negatives = rows.gather(1, columns).masked_fill(~kept, -1)
    negative_scores = scores.gather(1, columns).masked_fill(~kept, torch.nan)
    return Selection(negatives, negative_scores, removed, scores.size(1) - removed["positive"])


def own_positives(rows: Tensor, positives: list[list[int]]) -> Tensor:
    """(queries, candidates) mask of the candidates that are the query's own positives."""
    # (query, corpus row) as one number, so that one isin finds every query's positives among its candidates.
    width = int(rows.max()) + 1 if rows.numel() else 1
    keys = torch.tensor([query * width + row for query, query_rows in enumerate(positives) for row in query_rows
                         if row < width], dtype=torch.long)
    return torch.isin(torch.arange(len(rows)).unsqueeze(1) * width + rows, keys)


def _positions(window: Tensor, options: MiningOptions) -> Tensor:
    """(queries, num_negatives) positions in each query's window, ascending (best score first); -1 for none.

    top: the first num_negatives. random: the reference's draw, num_negatives positions out of
    max(window, num_negatives), those beyond the window dropped, so that a seeded run draws what the reference
    draws after `random.seed(seed)`."""
    count = options.num_negatives
    if options.sampling == "top":
        positions = torch.arange(count).expand(len(window), count)
        return positions.masked_fill(positions >= window.unsqueeze(1), -1)
    draw = random.Random(options.seed)
    drawn = []
    for available in window.tolist():
        picked = sorted(p for p in draw.sample(range(max(available, count)), k=count) if p < available)
        drawn.append(picked + [-1] * (count - len(picked)))
    return torch.tensor(drawn, dtype=torch.long).reshape(len(window), count)


def _conditions(scores: Tensor, rows: Tensor, positives: list[list[int]], lowest_positive: Tensor,
                options: MiningOptions):
    """(rule, mask of the candidates it would remove) for every rule in use, in the reference's order."""
    yield "positive", own_positives(rows, positives)
    lowest = lowest_positive.unsqueeze(1)
    if options.absolute_margin is not None:
        yield "absolute_margin", scores + options.absolute_margin > lowest
    if options.relative_margin is not None:
        # |positive| x margin below the positive, not positive x (1 - margin): the latter would raise the bar
        # for a negative positive score (the reference's #3819).
        yield "relative_margin", scores > lowest - lowest.abs() * options.relative_margin
    if options.max_score is not None:
        yield "max_score", scores > options.max_score
    if options.min_score is not None:
        yield "min_score", scores < options.min_score

"""What a mining run found: counts, why queries were skipped, and the score distributions of positives and negatives.

A query is skipped when it yields no training row with a negative: it has no positive (labelled data), or fewer
negatives than its format needs (num_negatives for n-tuple, one otherwise). The reason of a short query is "too few
candidates" when even without filters its window (ranks range_min to range_max among its candidates that are not
its positives) holds fewer than it needs; otherwise each filter that removed some of its candidates (a query can
count under several).
"""

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.evaluation.mining.selection import Selection

NO_POSITIVE = "no positive"
TOO_FEW_CANDIDATES = "too few candidates"


@dataclass(frozen=True)
class ScoreStats:
    count: int
    mean: float
    std: float
    min: float
    p25: float
    median: float
    p75: float
    max: float


def score_stats(values: Tensor) -> ScoreStats | None:
    """Distribution of `values` (None when there are none)."""
    values = values.double().flatten()
    if values.numel() == 0:
        return None
    quartiles = torch.quantile(values, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    std = float(values.std()) if values.numel() > 1 else 0.0
    return ScoreStats(values.numel(), float(values.mean()), std, float(values.min()), quartiles[0], quartiles[1],
                      quartiles[2], float(values.max()))


@dataclass(frozen=True)
class MiningSummary:
    queries: int
    """Distinct anchors in the data."""
    queries_mined: int
    """Queries with at least one positive."""
    positive_pairs: int
    """Distinct (query, positive) pairs."""
    corpus: int
    """Distinct corpus texts (the positives included)."""
    rows: int
    """Rows written."""
    negatives: int
    """Negatives found, over all queries (each query's once)."""
    queries_short: int
    """Queries with fewer than num_negatives negatives."""
    skipped: dict[str, int]
    """Queries skipped, per reason."""
    queries_skipped: int
    candidates: int
    """Candidates looked at (each query's pool, its own positives included)."""
    removed: dict[str, int]
    """Candidates removed, per rule."""
    positive_scores: ScoreStats | None
    negative_scores: ScoreStats | None
    margins: ScoreStats | None
    """Positive score minus negative score, per (query, positive, negative)."""

    @property
    def skipped_share(self) -> float:
        return self.queries_skipped / self.queries

    def as_json(self) -> dict:
        return asdict(self) | {"skipped_share": self.skipped_share}


def summarise(queries: int, positives: list[list[int]], corpus: int, rows: int, selection: Selection,
              positive_scores: Tensor, options: MiningOptions, range_max: int) -> MiningSummary:
    found = selection.found
    needed = options.num_negatives if options.output_format == "n-tuple" else 1
    short = found < needed
    unfiltered = (selection.pool.clamp(max=range_max) - options.range_min).clamp(min=0)
    too_few = short & (unfiltered < needed)
    skipped = {NO_POSITIVE: queries - len(positives), TOO_FEW_CANDIDATES: int(too_few.sum())}
    for rule, counts in selection.removed.items():
        if rule != "positive":
            skipped[rule] = int((short & ~too_few & (counts > 0)).sum())
    kept = selection.negatives >= 0
    positive_counts = torch.tensor([len(rows) for rows in positives])
    margins = positive_scores.unsqueeze(1) - selection.scores.repeat_interleave(positive_counts, dim=0)
    return MiningSummary(
        queries=queries, queries_mined=len(positives), positive_pairs=int(positive_counts.sum()), corpus=corpus,
        rows=rows, negatives=int(kept.sum()), queries_short=int((found < options.num_negatives).sum()),
        skipped={reason: count for reason, count in skipped.items() if count},
        queries_skipped=queries - len(positives) + int(short.sum()),
        candidates=int((selection.pool + selection.removed["positive"]).sum()),
        removed={rule: int(counts.sum()) for rule, counts in selection.removed.items()},
        positive_scores=score_stats(positive_scores), negative_scores=score_stats(selection.scores[kept]),
        margins=score_stats(margins[kept.repeat_interleave(positive_counts, dim=0)]))

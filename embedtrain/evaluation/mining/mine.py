"""Hard-negative mining, from (query, positive) pairs to training rows: embed, search, (re-score), select, format."""

from dataclasses import dataclass

import torch
from torch import Tensor

from embedtrain.errors import DataError
from embedtrain.evaluation.mining.formats import output_columns
from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.evaluation.mining.pairs import MiningInput
from embedtrain.evaluation.mining.progress import NoProgress, Progress
from embedtrain.evaluation.mining.scoring import PairScorer, score_pairs
from embedtrain.evaluation.mining.search import check_faiss, comparable, embed_texts, nearest, pair_scores
from embedtrain.evaluation.mining.selection import own_positives, select_negatives
from embedtrain.evaluation.mining.summary import MiningSummary, summarise
from embedtrain.models.embedder import SentenceEmbedder


@dataclass(frozen=True)
class MiningResult:
    columns: dict[str, list]
    """The mined rows, column by column (options.output_format)."""
    summary: MiningSummary
    range_max: int
    """The range_max used (options.range_max, or its default for this data)."""
    similarity: str
    """How the embedding model scored the candidates."""


def mine_negatives(model: SentenceEmbedder, data: MiningInput, options: MiningOptions,
                   rescorer: PairScorer | None = None, progress: Progress = NoProgress()) -> MiningResult:
    """Mine `options.num_negatives` negatives per query of `data` with `model` (dense or sparse); with `rescorer`,
    the candidates and positives are scored by it, and the filters, the ranking and the score columns use its
    scores.

    DataError when no query gets a negative (nothing worth writing), naming why."""
    similarity = options.similarity or model.similarity_fn_name
    range_max = options.candidate_range(data.most_positives, rescorer is not None)
    if options.search == "faiss":
        check_faiss(model.model_type == "SparseEncoder", similarity)
    queries, compared_by = comparable(embed_texts(model, data.queries, "query", options.batch_size,
                                                  options.query_prompt_name, options.query_prompt, progress,
                                                  "queries"), similarity)
    corpus, _ = comparable(embed_texts(model, data.corpus, "document", options.batch_size, options.corpus_prompt_name,
                                       options.corpus_prompt, progress, "the corpus"), similarity)
    scores, rows = nearest(queries, corpus, compared_by, range_max + data.most_positives, options.chunk_size,
                           options.search, progress)
    positive_scores = pair_scores(queries, corpus, data.positives, compared_by)
    del queries, corpus
    if rescorer is not None:
        scores, positive_scores = _rescore(rescorer, data, scores, rows, options.batch_size, progress)
    pair_query = torch.arange(len(data.queries)).repeat_interleave(torch.tensor([len(p) for p in data.positives]))
    lowest = torch.full((len(data.queries),), torch.inf).scatter_reduce(0, pair_query, positive_scores, "amin")
    selection = select_negatives(scores, rows, data.positives, lowest, options, range_max)
    negatives = [[row for row in query_rows if row >= 0] for query_rows in selection.negatives.tolist()]
    negative_scores = [query_scores[:len(found)] for query_scores, found in zip(selection.scores.tolist(), negatives)]
    columns = output_columns(data, negatives, negative_scores, positive_scores.tolist(), options)
    rows_written = len(next(iter(columns.values())))
    summary = summarise(len(data.queries) + data.queries_without_positive, data.positives,
                        len(data.corpus), rows_written, selection, positive_scores, options, range_max)
    if summary.negatives == 0 or rows_written == 0:
        raise DataError(_nothing_mined(summary, options, range_max))
    return MiningResult(columns, summary, range_max, similarity)


def _rescore(rescorer: PairScorer, data: MiningInput, scores: Tensor, rows: Tensor, batch_size: int,
             progress: Progress) -> tuple[Tensor, Tensor]:
    """The rescorer's scores of every candidate and positive pair. A query's own positives among its candidates
    are not scored: they are never negatives (their score stays the embedding model's and is never read)."""
    own = own_positives(rows, data.positives)
    scored = (~own).nonzero().tolist()
    pairs = [(data.queries[query], data.corpus[int(rows[query, column])]) for query, column in scored]
    positive_pairs = [(query, data.corpus[row]) for query, positives in zip(data.queries, data.positives)
                      for row in positives]
    new_scores = score_pairs(rescorer, pairs + positive_pairs, batch_size, progress, "re-scoring candidates")
    rescored = scores.clone()
    rescored[~own] = new_scores[:len(pairs)]
    return rescored, new_scores[len(pairs):]


def _nothing_mined(summary: MiningSummary, options: MiningOptions, range_max: int) -> str:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in summary.skipped.items())
    filters = [f"--{name.replace('_', '-')}" for name in ("absolute_margin", "relative_margin", "max_score",
                                                          "min_score") if getattr(options, name) is not None]
    loosen = f"loosen {', '.join(filters)}, " if filters else ""
    needed = f"all {options.num_negatives} negatives" if options.output_format == "n-tuple" else "a negative"
    return (f"no query got {needed} ({summary.queries_mined} queries with a positive, a corpus of {summary.corpus} "
            f"texts, candidates ranked {options.range_min} to {range_max}; queries skipped by reason: {reasons}); "
            f"{loosen}raise --range-max, lower --range-min or --num-negatives, or add texts with --corpus")

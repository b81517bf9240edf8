"""The mined rows in the reference's four formats, with the data's anchor and positive column names.

Queries come in the order they first appear, each query's positives in theirs, negatives best first:

- triplet: one (anchor, positive, negative) row per positive and negative; `scores` [positive, negative];
- n-tuple: one (anchor, positive, negative_1, ..., negative_n) row per positive, only for queries with all n
  negatives; `scores` [positive, negative_1, ...];
- labeled-pair: (anchor, text, label) rows, a query's positives (label 1) then its negatives (label 0); with scores,
  a `score` column in place of `label`;
- labeled-list: one (anchor, [positive, negatives...], labels [1, 0, ...]) row per positive, for queries with at
  least one negative; with scores, `scores` in place of `labels`.
"""

from embedtrain.data.contract import ColumnContract, ColumnMapping, LabelKind, resolve_columns
from embedtrain.errors import DataError
from embedtrain.evaluation.mining.options import MiningOptions, OutputFormat
from embedtrain.evaluation.mining.pairs import MiningInput

LABELS_WRITTEN: dict[tuple[OutputFormat, bool], tuple[LabelKind | None, ...]] = {
    ("triplet", False): (None,), ("n-tuple", False): (None,),
    ("triplet", True): ("scores",), ("n-tuple", True): ("scores",),
    ("labeled-pair", False): ("binary", "class", "score", "scores"),
    ("labeled-pair", True): ("score", "scores"),
    ("labeled-list", False): ("list_scores",), ("labeled-list", True): ("list_scores",),
}
"""(output_format, output_scores) -> the label kinds a loss may read from those rows (None: rows without a label):
a `scores` list per row; 0/1 labels, which are also classes and scores; one score per pair; a label per document."""


def output_columns(data: MiningInput, negatives: list[list[int]], negative_scores: list[list[float]],
                   positive_scores: list[float], options: MiningOptions) -> dict[str, list]:
    """Columns of the mined data. negatives / negative_scores: per query, best first; positive_scores: per
    (query, positive) pair, in query order."""
    mined_columns(data.anchor_column, data.positive_column, options)
    build = {"triplet": _triplets, "n-tuple": _tuples, "labeled-pair": _labeled_pairs,
             "labeled-list": _labeled_lists}[options.output_format]
    return build(data, negatives, negative_scores, _per_query(positive_scores, data.positives), options)


def mined_columns(anchor_column: str, positive_column: str, options: MiningOptions) -> list[str]:
    """The columns mining writes for data whose pairs are in these columns, in order: known before anything is
    mined. DataError when a data column has the name of a column the format adds."""
    added = added_columns(options)
    taken = [name for name in (anchor_column, positive_column) if name in added]
    if taken:
        raise DataError(f"the data's column {taken[0]!r} has the name of a column the {options.output_format} format "
                        f"adds ({', '.join(added)}); rename it, or map another name with --columns")
    return [anchor_column, positive_column, *added]


def mapping_for(contract: ColumnContract, options: MiningOptions, anchor_column: str, positive_column: str
                ) -> ColumnMapping | None:
    """How a loss (`contract`) reads the rows mining writes with `options`, by position as for any data without
    `columns:`; None when they do not fit it: other inputs, a label it does not take or lacks, a list of texts where
    it takes one text (or the reverse). What only the values show (a score out of a loss's range) is checked on the
    mined rows."""
    if (options.output_format == "labeled-list") != (contract.list_input is not None):
        return None
    if contract.label not in LABELS_WRITTEN[(options.output_format, options.output_scores)]:
        return None
    try:
        return resolve_columns(mined_columns(anchor_column, positive_column, options), contract, None, [], "")
    except DataError:
        return None


def added_columns(options: MiningOptions) -> list[str]:
    """The columns a format adds to the anchor and positive ones."""
    scores = ["scores"] if options.output_scores else []
    return {"triplet": ["negative", *scores],
            "n-tuple": [f"negative_{index}" for index in range(1, options.num_negatives + 1)] + scores,
            "labeled-pair": ["score" if options.output_scores else "label"],
            "labeled-list": ["scores" if options.output_scores else "labels"]}[options.output_format]


def _per_query(flat: list[float], positives: list[list[int]]) -> list[list[float]]:
    scores, start = [], 0
    for rows in positives:
        scores.append(flat[start:start + len(rows)])
        start += len(rows)
    return scores


def _triplets(data, negatives, negative_scores, positive_scores, options) -> dict[str, list]:
    columns: dict[str, list] = {data.anchor_column: [], data.positive_column: [], "negative": []}
    scores = []
    for query, rows, query_negatives, query_negative_scores, query_positive_scores in zip(
            data.queries, data.positives, negatives, negative_scores, positive_scores):
        for row, positive_score in zip(rows, query_positive_scores):
            for negative, negative_score in zip(query_negatives, query_negative_scores):
                columns[data.anchor_column].append(query)
                columns[data.positive_column].append(data.corpus[row])
                columns["negative"].append(data.corpus[negative])
                scores.append([positive_score, negative_score])
    return columns | ({"scores": scores} if options.output_scores else {})


def _tuples(data, negatives, negative_scores, positive_scores, options) -> dict[str, list]:
    names = [f"negative_{index}" for index in range(1, options.num_negatives + 1)]
    columns: dict[str, list] = {data.anchor_column: [], data.positive_column: [], **{name: [] for name in names}}
    scores = []
    for query, rows, query_negatives, query_negative_scores, query_positive_scores in zip(
            data.queries, data.positives, negatives, negative_scores, positive_scores):
        if len(query_negatives) < options.num_negatives:
            continue
        for row, positive_score in zip(rows, query_positive_scores):
            columns[data.anchor_column].append(query)
            columns[data.positive_column].append(data.corpus[row])
            for name, negative in zip(names, query_negatives):
                columns[name].append(data.corpus[negative])
            scores.append([positive_score, *query_negative_scores])
    return columns | ({"scores": scores} if options.output_scores else {})


def _labeled_pairs(data, negatives, negative_scores, positive_scores, options) -> dict[str, list]:
    texts, targets, queries = [], [], []
    for query, rows, query_negatives, query_negative_scores, query_positive_scores in zip(
            data.queries, data.positives, negatives, negative_scores, positive_scores):
        for row, score in zip(rows, query_positive_scores):
            queries.append(query)
            texts.append(data.corpus[row])
            targets.append(score if options.output_scores else 1)
        for negative, score in zip(query_negatives, query_negative_scores):
            queries.append(query)
            texts.append(data.corpus[negative])
            targets.append(score if options.output_scores else 0)
    return {data.anchor_column: queries, data.positive_column: texts,
            ("score" if options.output_scores else "label"): targets}


def _labeled_lists(data, negatives, negative_scores, positive_scores, options) -> dict[str, list]:
    queries, lists, targets = [], [], []
    for query, rows, query_negatives, query_negative_scores, query_positive_scores in zip(
            data.queries, data.positives, negatives, negative_scores, positive_scores):
        if not query_negatives:
            continue
        for row, positive_score in zip(rows, query_positive_scores):
            queries.append(query)
            lists.append([data.corpus[row], *(data.corpus[negative] for negative in query_negatives)])
            targets.append([positive_score, *query_negative_scores] if options.output_scores
                           else [1] + [0] * len(query_negatives))
    return {data.anchor_column: queries, data.positive_column: lists,
            ("scores" if options.output_scores else "labels"): targets}

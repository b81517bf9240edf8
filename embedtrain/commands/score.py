"""`embedtrain score`: a teacher's scores added to (query, positive, negatives...) rows, for distillation losses.

One candidate column (query, text) gets a `score` column (the cross-encoder's MSE, CosineSimilarity-style losses);
several get a `scores` list per row, [positive, negative_1, ...] (MarginMSE, DistillKLDiv and their sparse and
cross-encoder namesakes), or with `--margins` a `label` list of positive - negative_i (MarginMSE). The teacher is a
cross-encoder or any embedding model (its similarity of the query's and the text's embeddings).
"""

from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Group

from embedtrain import __version__
from embedtrain.commands.columns import parse_columns
from embedtrain.commands.mine import validated_options
from embedtrain.config import StrictModel
from embedtrain.console import counts_table, scores_table
from embedtrain.data.checks import DatasetReport, LoadedData, inspect_rows, raise_on_errors
from embedtrain.data.contract import LABEL_COLUMN_NAMES, ColumnContract, resolve_columns
from embedtrain.data.source import DataSource, load_source, public_name
from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.models import Kind, load_scorer
from embedtrain.evaluation.mining.output import check_output, fingerprint, sidecar_path, write_rows
from embedtrain.evaluation.mining.progress import Progress
from embedtrain.evaluation.mining.scoring import BiEncoderScorer, score_columns
from embedtrain.evaluation.mining.summary import ScoreStats, score_stats
from embedtrain.modules.dense import Activation
from embedtrain.similarity import SimilarityName

TEACHER_ROWS = ColumnContract(
    inputs=("query", "positive"), repeated_input="negative",
    label_refusal="`embedtrain score` writes the teacher's scores itself; pass --replace-label to drop that column "
                  "and write the scores in its place")


class ScoringOptions(StrictModel):
    margins: bool = False
    activation: Activation | None = None
    similarity: SimilarityName | None = None
    query_prompt: str | None = None
    query_prompt_name: str | None = None
    document_prompt: str | None = None
    document_prompt_name: str | None = None
    batch_size: int = 32


@dataclass(frozen=True)
class ScoreRequest:
    data: str
    model: str
    output: Path
    split: str = "train"
    columns: str | None = None
    kind: Kind | None = None
    replace_label: bool = False
    force: bool = False
    options: dict | None = None


@dataclass(frozen=True)
class ScoreOutcome:
    request: ScoreRequest
    label_column: str
    rows: int
    candidate_columns: list[str]
    positive: ScoreStats | None
    negative: ScoreStats | None
    margin: ScoreStats | None


def run_score(request: ScoreRequest, progress: Progress) -> ScoreOutcome:
    options = validated_options(ScoringOptions, request.options or {})
    check_output(request.output, request.force)
    rows, mapping = _load_rows(request)
    candidates = [column for role, column in mapping.inputs if role != "query"]
    if options.margins and len(candidates) < 2:
        raise RecipeError(f"--margins: margins are positive - negative, and the data has one candidate column "
                          f"({candidates[0]}); add negative columns, or drop --margins for a `score` column")
    label_column = "label" if options.margins else "score" if len(candidates) == 1 else "scores"
    query_column = dict(mapping.inputs)["query"]
    scorer = load_scorer(request.model, request.kind, "--model", activation=options.activation,
                         activation_option="--activation", similarity=options.similarity,
                         query_prompt=options.query_prompt, query_prompt_name=options.query_prompt_name,
                         document_prompt=options.document_prompt, document_prompt_name=options.document_prompt_name)
    scores = score_columns(list(rows[query_column]), [list(rows[column]) for column in candidates], scorer,
                           options.batch_size, progress)
    labels = (scores[:, :1] - scores[:, 1:]) if options.margins else scores[:, 0] if len(candidates) == 1 else scores
    columns = {column: list(rows[column]) for _, column in mapping.inputs} | {label_column: labels.tolist()}
    negatives = scores[:, 1:]
    outcome = ScoreOutcome(request, label_column, len(rows), candidates, score_stats(scores[:, 0]),
                           score_stats(negatives), score_stats(scores[:, :1] - negatives))
    write_rows(columns, request.output, _provenance(request, options, scorer, mapping, rows, outcome))
    return outcome


def _load_rows(request: ScoreRequest):
    """The rows and their mapping to query, positive, negative...; a label column only with --replace-label."""
    rows = load_source(DataSource(source=request.data, split=request.split), "--data")
    label_columns = [name for name in rows.column_names if name in LABEL_COLUMN_NAMES]
    if request.replace_label and not label_columns:
        raise RecipeError(f"--replace-label: the data has no label column ({' / '.join(LABEL_COLUMN_NAMES)}) to "
                          f"replace; remove the option")
    ignored = label_columns if request.replace_label else []
    report = DatasetReport(where="--data", source=request.data, contract=TEACHER_ROWS, row_count=len(rows))
    report.mapping = resolve_columns(rows.column_names, TEACHER_ROWS,
                                     parse_columns(request.columns) if request.columns else None, ignored, "--data")
    inspect_rows(report, LoadedData(rows, report.mapping), None)
    raise_on_errors([report])
    return rows, report.mapping


def _provenance(request: ScoreRequest, options: ScoringOptions, scorer, mapping, rows, outcome: ScoreOutcome) -> dict:
    model = {"name": public_name(request.model)}
    if isinstance(scorer, BiEncoderScorer):
        model |= {"kind": "bi-encoder", "similarity": scorer.similarity}
    else:
        model |= {"kind": "cross-encoder", "activation": scorer.activation_name}
    text_columns = [column for _, column in mapping.inputs]
    return {
        "embedtrain": __version__,
        "command": "score",
        "model": model,
        "data": {"source": public_name(request.data), "split": request.split,
                 "columns": {role: column for role, column in mapping.inputs},
                 "fingerprint": fingerprint(*(list(rows[column]) for column in text_columns))},
        "options": options.model_dump(),
        "output": {"file": request.output.name, "label_column": outcome.label_column,
                   "label": "positive - negative_i per row" if options.margins else
                   "the teacher's score of each candidate column, in order"},
        "summary": {"rows": outcome.rows, "pairs_scored": outcome.rows * len(outcome.candidate_columns),
                    **{name: asdict(stats) if stats is not None else None for name, stats in (
                        ("positive_scores", outcome.positive), ("negative_scores", outcome.negative),
                        ("margins", outcome.margin))}},
    }


def scoring_report(outcome: ScoreOutcome) -> Group:
    counts = [("rows", f"{outcome.rows:,}"), ("candidate columns", ", ".join(outcome.candidate_columns)),
              ("pairs scored", f"{outcome.rows * len(outcome.candidate_columns):,}"),
              ("written as", f"column {outcome.label_column!r}")]
    columns = {"positive": outcome.positive}
    if outcome.negative is not None:
        columns |= {"negative": outcome.negative, "positive - negative": outcome.margin}
    return Group(counts_table("scored", counts),
                 scores_table(f"teacher scores ({public_name(outcome.request.model)})", columns),
                 f"wrote {outcome.request.output} and {sidecar_path(outcome.request.output).name}")


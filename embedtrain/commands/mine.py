"""`embedtrain mine`: hard negatives for (query, positive) pairs, written as training rows with their provenance.

Every argument is checked before anything loads (options, the output file), then the data (exit 3 for bad data),
then the models (exit 2 for one that cannot be used), then the mining; the rows and the sidecar are written only when
a query got a negative.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pydantic
from rich.console import Group

from embedtrain import __version__
from embedtrain.commands.columns import parse_columns
from embedtrain.commands.mining_console import counts_table, scores_table
from embedtrain.commands.scorers import Kind, load_embedder, load_scorer
from embedtrain.data.source import DataSource, public_name
from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.mine import MiningResult, mine_negatives
from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.evaluation.mining.output import check_output, fingerprint, sidecar_path, write_rows
from embedtrain.evaluation.mining.pairs import MiningInput, PairRows, load_corpus, load_pairs, prepare_input
from embedtrain.evaluation.mining.progress import Progress


@dataclass(frozen=True)
class MineRequest:
    """What the command line asked for, before anything is loaded."""

    data: str
    model: str
    output: Path
    split: str = "train"
    columns: str | None = None
    corpus: str | None = None
    corpus_column: str | None = None
    rescore: str | None = None
    kind: Kind | None = None
    force: bool = False
    options: dict = field(default_factory=dict)
    """MiningOptions fields given on the command line (the others keep their defaults)."""


@dataclass(frozen=True)
class MineOutcome:
    request: MineRequest
    options: MiningOptions
    result: MiningResult
    kind: str


def run_mine(request: MineRequest, progress: Progress) -> MineOutcome:
    options = validated_options(MiningOptions, request.options)
    check_output(request.output, request.force)
    source = DataSource(source=request.data, split=request.split,
                        columns=parse_columns(request.columns) if request.columns else None)
    pairs = load_pairs(source, "--data")
    corpus = (load_corpus(DataSource(source=request.corpus), request.corpus_column, "--corpus")
              if request.corpus else None)
    data = prepare_input(pairs, corpus)
    model = load_embedder(request.model, request.kind)
    rescorer = load_scorer(request.rescore, None, "--rescore") if request.rescore else None
    result = mine_negatives(model, data, options, rescorer, progress)
    kind = "sparse" if model.model_type == "SparseEncoder" else "dense"
    write_rows(result.columns, request.output, provenance(request, options, result, pairs, corpus, data, kind))
    return MineOutcome(request, options, result, kind)


def validated_options(model: type[pydantic.BaseModel], given: dict):
    """The options model from command-line values; RecipeError naming each bad option by its flag."""
    try:
        return model(**given)
    except pydantic.ValidationError as error:
        problems = [_flag(e["loc"]) + e["msg"].removeprefix("Value error, ") for e in error.errors()]
        raise RecipeError("; ".join(problems)) from None


def _flag(location: tuple) -> str:
    """`--range-max: ` for an option's own problem; nothing for one between options (its message names them)."""
    return f"--{str(location[0]).replace('_', '-')}: " if location else ""


def provenance(request: MineRequest, options: MiningOptions, result: MiningResult, pairs: PairRows,
               corpus: list[str] | None, data: MiningInput, kind: str) -> dict:
    """The sidecar: model, data and corpus (names and fingerprints), the options as used, the output and counts."""
    columns = {"anchor": pairs.anchor_column, "positive": pairs.positive_column, "label": pairs.label_column}
    return {
        "embedtrain": __version__,
        "command": "mine",
        "model": {"name": public_name(request.model), "kind": kind, "similarity": result.similarity},
        "rescore_model": public_name(request.rescore) if request.rescore else None,
        "data": {"source": public_name(request.data), "split": request.split,
                 "columns": {role: column for role, column in columns.items() if column is not None},
                 "fingerprint": fingerprint(pairs.anchors, pairs.positives, pairs.labels or [])},
        "corpus": ({"source": public_name(request.corpus), "texts": len(corpus), "fingerprint": fingerprint(corpus)}
                   if corpus is not None else None),
        "options": options.model_dump() | {"range_max": result.range_max},
        "output": {"file": request.output.name, "format": options.output_format, "columns": list(result.columns)},
        "summary": result.summary.as_json(),
    }


def mining_report(outcome: MineOutcome) -> Group:
    """What was mined: counts, skipped queries and why, removed candidates per rule, score distributions."""
    summary, options = outcome.result.summary, outcome.options
    counts = [
        ("queries", f"{summary.queries:,} ({summary.queries_mined:,} with a positive)"),
        ("positive pairs", f"{summary.positive_pairs:,}"),
        ("corpus texts", f"{summary.corpus:,}"),
        ("negatives per query", f"{summary.negatives / summary.queries_mined:.2f} of {options.num_negatives} "
                                f"({summary.queries_short:,} queries short)"),
        ("candidates ranked", f"{options.range_min} to {outcome.result.range_max}"),
        ("queries skipped", f"{summary.queries_skipped:,} ({summary.skipped_share:.1%})"),
        *((f"  {reason}", f"{count:,}") for reason, count in summary.skipped.items()),
        ("candidates removed", f"{sum(summary.removed.values()):,} of {summary.candidates:,}"),
        *((f"  {rule.replace('_', ' ')}", f"{count:,} ({count / max(summary.candidates, 1):.1%})")
          for rule, count in summary.removed.items()),
        ("rows written", f"{summary.rows:,} ({options.output_format})"),
    ]
    scored_by = f"re-scored by {public_name(outcome.request.rescore)}" if outcome.request.rescore else \
        f"{outcome.kind} model, {outcome.result.similarity}"
    return Group(counts_table("mined", counts),
                 scores_table(f"scores ({scored_by})", {"positive": summary.positive_scores,
                                                        "negative": summary.negative_scores,
                                                        "positive - negative": summary.margins}),
                 f"wrote {outcome.request.output} and {sidecar_path(outcome.request.output).name}")

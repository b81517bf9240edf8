"""`embedtrain mine`: hard negatives for (query, positive) pairs, written as training rows with their provenance.

Every argument is checked before anything loads (options, the output file), then the data (exit 3 for bad data),
then the models (exit 2 for one that cannot be used), then the mining; the rows and the sidecar are written only when
a query got a negative.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pydantic
from rich.console import Group

from embedtrain.commands.columns import parse_columns
from embedtrain.console import mining_summary
from embedtrain.data.source import DataSource, public_name
from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.mine import MiningResult, mine_negatives
from embedtrain.evaluation.mining.models import Kind, load_embedder, load_rescorer, scorer_activation, scorer_kind
from embedtrain.evaluation.mining.options import MiningOptions, RescoreKind
from embedtrain.evaluation.mining.output import check_output, mining_provenance, sidecar_path, write_rows
from embedtrain.evaluation.mining.pairs import load_corpus, load_pairs, prepare_input
from embedtrain.evaluation.mining.progress import Progress
from embedtrain.modules.dense import Activation


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
    rescore_activation: Activation | None = None
    rescore_kind: RescoreKind = "auto"
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
    if request.rescore_activation is not None and request.rescore is None:
        raise RecipeError("--rescore-activation applies to the scores of a --rescore cross-encoder, and none is given: "
                          "add --rescore, or remove --rescore-activation")
    if request.rescore_kind != "auto" and request.rescore is None:
        raise RecipeError(f"--rescore-kind {request.rescore_kind} says what the --rescore model is, and none is given: "
                          f"add --rescore, or remove --rescore-kind")
    check_output(request.output, request.force)
    source = DataSource(source=request.data, split=request.split,
                        columns=parse_columns(request.columns) if request.columns else None)
    pairs = load_pairs(source, "--data")
    corpus = (load_corpus(DataSource(source=request.corpus), request.corpus_column, "--corpus")
              if request.corpus else None)
    data = prepare_input(pairs, corpus)
    # The re-scorer first: its kind is checked from its folder, before the mining model loads.
    rescorer = (load_rescorer(request.rescore, request.rescore_kind, request.rescore_activation)
                if request.rescore else None)
    model = load_embedder(request.model, request.kind)
    result = mine_negatives(model, data, options, rescorer, progress)
    kind = "sparse" if model.model_type == "SparseEncoder" else "dense"
    write_rows(result.columns, request.output, mining_provenance(
        "mine", request.model, kind, request.rescore, (request.data, request.split), pairs,
        (request.corpus, corpus) if corpus is not None else None, options, result, request.output,
        scorer_activation(rescorer), scorer_kind(rescorer) if rescorer is not None else None))
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


def mining_report(outcome: MineOutcome) -> Group:
    """What was mined (`mining_summary`) and the files written."""
    scored_by = (f"re-scored by {public_name(outcome.request.rescore)}" if outcome.request.rescore else
                 f"{outcome.kind} model, {outcome.result.similarity}")
    return Group(mining_summary(outcome.result.summary, outcome.options, outcome.result.range_max, scored_by),
                 f"wrote {outcome.request.output} and {sidecar_path(outcome.request.output).name}")

"""`embedtrain eval`: evaluate a saved model."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from embedtrain.cli.app import COLUMNS_HELP, app
from embedtrain.cli.boundary import fail, user_errors
from embedtrain.console import console
from embedtrain.errors import ExitCode

EVAL_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain eval runs/stsb/final --evaluator sts --data ../shared/data/stsb/test.csv --fail-under sts_spearman_cosine=0.8

  embedtrain eval MODEL --evaluator beir=../shared/data/trecqa/beir_test --evaluator nanobeir --output metrics.json

  embedtrain eval MODEL --evaluator binary --data pairs.csv --columns sentence1=q,sentence2=a,label=y --set "similarity_fn_names=\\[cosine,dot]"
"""


class ModelKind(str, Enum):
    dense = "dense"
    sparse = "sparse"
    cross_encoder = "cross_encoder"


@app.command(name="eval", epilog=EVAL_EXAMPLES)
def eval_command(
    model: Annotated[str, typer.Argument(help="A saved model: embedtrain's or sentence-transformers', a folder or hub id.",
                                         show_default=False)],
    evaluators: Annotated[list[str], typer.Option("--evaluator", "-e", metavar="TYPE[=SOURCE]",
                                                  help="sts, triplet, binary, ir (beir), nanobeir, reranking, ... "
                                                       "(repeatable).")],
    data: Annotated[list[str] | None, typer.Option("--data", help="Source of the next evaluator given without "
                                                                  "one: a local file/folder or a hub id (repeatable).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Split to read (e.g. test, train[:500]).")] = None,
    columns: Annotated[str | None, typer.Option("--columns", metavar="INPUT=COLUMN,...", help=COLUMNS_HELP)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Texts per forward pass.")] = None,
    options: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                      help="An evaluator option, read as YAML, e.g. "
                                                           "truncate_dim=128 (repeatable).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the metrics to this JSON file.")] = None,
    fail_under: Annotated[list[str] | None, typer.Option("--fail-under", metavar="METRIC=VALUE",
                                                         help="Exit with code 5 if METRIC < VALUE (repeatable).")] = None,
    kind: Annotated[ModelKind | None, typer.Option("--kind", show_default=False,
                                                   help="Build the model as dense, sparse or cross_encoder (default: a "
                                                        "saved model's own kind; SPLADE for a masked-LM checkpoint "
                                                        "given sparse evaluators; a cross-encoder for a sequence "
                                                        "classifier given cross-encoder evaluators; else dense).")] = None,
) -> None:
    """Evaluate a saved model; print a metrics table, optionally write JSON and enforce minimum metrics."""
    from embedtrain.commands import eval as evaluation
    from embedtrain.console import metrics_table

    request = evaluation.EvalRequest(evaluators, list(data or []), split=split, columns=columns, batch_size=batch_size,
                                     options=tuple(options or ()), fail_under=tuple(fail_under or ()), output=output,
                                     kind=kind.value if kind else None)
    with user_errors():
        outcome = evaluation.run_eval(model, request)
    console.print(f"[bold]model[/bold] {escape(model)}", soft_wrap=True)
    console.print(metrics_table("evaluation", outcome.metrics))
    if outcome.failures:
        fail("below threshold: " + "; ".join(outcome.failures), ExitCode.BELOW_THRESHOLD)

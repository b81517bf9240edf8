"""The `embedtrain` command line. Thin: parse arguments, call the library, map errors to exit codes."""

import json
import logging
import os
import tempfile
import traceback
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.logging import RichHandler
from rich.markup import escape

from embedtrain import __version__
from embedtrain.console import console
from embedtrain.errors import EmbedtrainError, ExitCode

app = typer.Typer(
    name="embedtrain",
    help="Train and fine-tune text embedding models from a YAML recipe.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

COLUMNS_HELP = ("Map inputs to data columns, e.g. anchor=q,positive=a; a repeated input several times "
                "(negative=n1,negative=n2), the label as label=COLUMN.")

TRAIN_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain train recipes/quickstart.yaml --dry-run

  embedtrain train recipes/stsb.yaml --set training.learning_rate=3e-5 --fail-under sts-dev_spearman_cosine=0.8

  embedtrain train recipes/stsb.yaml --output-dir runs/stsb-2 --resume

  embedtrain train recipes/stsb.yaml --launch configs/multi-gpu.yaml
"""


def _version(value: bool) -> None:
    if value:
        from embedtrain.commands.version import version_text

        typer.echo(version_text(__version__))
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the versions of embedtrain, python and its main "
                                                         "dependencies (for bug reports), and exit.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Show debug logs of embedtrain, and the traceback of an error.")] = False,
) -> None:
    _options.verbose = verbose
    _configure_logging(verbose)


@app.command(epilog=TRAIN_EXAMPLES)
def train(
    recipe: Annotated[Path, typer.Argument(help="The YAML recipe.", show_default=False)],
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE",
                                                 help="Override a recipe field, e.g. training.epochs=2 (repeatable).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint in the output directory.")] = False,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", help="Override training.output_dir.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Run every check and print the plan (steps, warm-up, "
                                                            "parameters, tokens, an estimate of time and memory); "
                                                            "train nothing, write nothing.")] = False,
    fail_under: Annotated[list[str] | None, typer.Option("--fail-under", metavar="METRIC=VALUE",
                                                         help="After the final save, exit with code 5 if the final "
                                                              "model's METRIC < VALUE (repeatable).")] = None,
    launch: Annotated[Path | None, typer.Option("--launch", metavar="CONFIG",
                                                help="Train in the processes this accelerate config describes (the "
                                                     "repository's configs/: cpu-2proc.yaml, multi-gpu.yaml, fsdp.yaml, "
                                                     "...), after checking it and the recipe.")] = None,
) -> None:
    """Train a model from a recipe: validate it and its data, train, evaluate, save to OUTPUT_DIR/final (with
    run.json, metrics.jsonl and metrics.json beside it; `embedtrain report OUTPUT_DIR` sums them up)."""
    from accelerate import PartialState

    from embedtrain.commands.eval import threshold_failures
    from embedtrain.commands.train import training_thresholds
    from embedtrain.console import RichObserver
    from embedtrain.engine.run import run_training
    from embedtrain.recipe.loading import load_recipe

    given_overrides = list(overrides or [])
    overrides = list(given_overrides)
    if output_dir is not None:  # quoted, so that YAML reads any path as a string (`null`, `runs/x #2`)
        overrides.append(f"training.output_dir={json.dumps(str(output_dir))}")
    with _user_errors() as boundary:
        loaded = load_recipe(recipe, overrides)
        thresholds = training_thresholds(loaded, list(fail_under or []))
        if launch is not None:
            from embedtrain.commands.launch import check_launch, launch_training, refuse_nested_launch, train_arguments

            refuse_nested_launch()
            config = check_launch(launch, loaded)
            if not dry_run:  # a dry run plans here, in this process, below
                arguments = train_arguments(recipe, given_overrides, resume, output_dir, list(fail_under or []),
                                            _options.verbose)
                raise typer.Exit(launch_training(launch, config.use_cpu, arguments))
        boundary.run_dir = Path(loaded.training.output_dir)
        try:
            if dry_run:
                from embedtrain.console import dry_run_report
                from embedtrain.engine.dry_run import dry_run as plan_run

                console.print(dry_run_report(plan_run(loaded, resume=resume)))
                return
            result = run_training(loaded, resume=resume, observer=RichObserver(), recipe_file=recipe)
        finally:
            # Several processes: tear the process group down before the interpreter exits, or gloo's threads can
            # abort a finished process ("terminate called without an active exception").
            PartialState().destroy_process_group()
    # Every process holds the main process's metrics; the main one checks them (a launcher exits with its code).
    if thresholds and PartialState().is_main_process and (failures := threshold_failures(result.metrics, thresholds)):
        _fail("below threshold: " + "; ".join(failures), ExitCode.BELOW_THRESHOLD)


VALIDATE_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain validate-dataset recipes/stsb.yaml

  embedtrain validate-dataset --data pairs.csv --loss MultipleNegativesRankingLoss --columns anchor=q,positive=a

  embedtrain validate-dataset --data nli.csv --loss SoftmaxLoss --loss-option num_labels=3 --model ./my-model --json
"""


@app.command("validate-dataset", epilog=VALIDATE_EXAMPLES)
def validate_dataset(
    recipe: Annotated[Path | None, typer.Argument(help="Check every dataset and evaluator of this recipe.",
                                                  show_default=False)] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a recipe field.")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Check this file or hub dataset instead of a recipe.")] = None,
    split: Annotated[str, typer.Option("--split", help="Split of --data (with slicing, e.g. train[:1000]).")] = "train",
    loss: Annotated[str | None, typer.Option("--loss", help="The loss --data is for, e.g. CoSENTLoss.")] = None,
    loss_options: Annotated[list[str] | None, typer.Option("--loss-option", metavar="KEY=VALUE",
                                                           help="A parameter of --loss, read as YAML, e.g. num_labels=3 "
                                                                "(repeatable).")] = None,
    columns: Annotated[str | None, typer.Option("--columns", metavar="INPUT=COLUMN,...", help=COLUMNS_HELP)] = None,
    model: Annotated[str | None, typer.Option("--model", help="Tokenizer for length statistics (with --data).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Check data against what its loss or evaluator needs: columns, labels, empty texts, duplicates, lengths.

    Exits 3 when a check fails (or a warning, with --strict), 2 on invalid arguments.
    """
    from embedtrain.commands.validate import ValidationRequest, run_validation
    from embedtrain.console import data_report

    request = ValidationRequest(recipe=recipe, overrides=list(overrides or []), data=data, split=split, loss=loss,
                                loss_options=list(loss_options or []), columns=columns, model=model, strict=strict)
    with _user_errors():
        validation = run_validation(request)
    if as_json:
        typer.echo(json.dumps(validation.as_json(), indent=2))
    else:
        for report in validation.reports:
            console.print(data_report(report))
        for error in validation.evaluator_errors:
            console.print(f"[bold red]error:[/bold red] {escape(error)}", soft_wrap=True)
        console.print("[bold red]data check failed[/bold red]" if validation.failed
                      else "[bold green]data check passed[/bold green]")
    if validation.failed:
        raise typer.Exit(int(ExitCode.DATA_ERROR))


LIST_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain list losses

  embedtrain list modules recipes/splade-nq.yaml
"""

list_app = typer.Typer(help="List what recipes can use.", no_args_is_help=True, epilog=LIST_EXAMPLES)
app.add_typer(list_app, name="list")

LIST_LOSSES_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain list losses

  embedtrain list losses --json > losses.json
"""


@list_app.command("losses", epilog=LIST_LOSSES_EXAMPLES)
def list_losses(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Every loss a recipe can name in `losses:` (its `type`), with its inputs, label and parameter defaults."""
    from embedtrain.commands.list_losses import loss_catalogue, loss_table

    if as_json:
        typer.echo(json.dumps(loss_catalogue(), indent=2))
    else:
        console.print(loss_table(loss_catalogue()))


LIST_MODULES_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain list modules recipes/splade-nq.yaml

  embedtrain list modules recipes/stsb.yaml --set model.base=./my-model

  embedtrain list modules runs/stsb/final --json
"""


@list_app.command("modules", epilog=LIST_MODULES_EXAMPLES)
def list_modules(
    recipe_or_model: Annotated[str, typer.Argument(help="A recipe (.yaml) or a saved model folder.", show_default=False)],
    overrides: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a recipe field.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every parameter of the model with the two names training.learning_rate_mapping patterns are matched against:
    its path (e.g. 0.sub_modules.query.0.weight) and its typed name (e.g. SparseStaticEmbedding.weight)."""
    from embedtrain.commands.list_modules import load_for_listing, module_catalogue, module_table

    with _user_errors():
        catalogue = module_catalogue(load_for_listing(recipe_or_model, list(overrides or [])))
    if as_json:
        typer.echo(json.dumps(catalogue, indent=2))
    else:
        console.print(module_table(catalogue))


RECIPES_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes ls

  embedtrain recipes cp stsb
"""

recipes_app = typer.Typer(help="The recipe catalogue that ships with embedtrain: list, print or copy a recipe.",
                          no_args_is_help=True, epilog=RECIPES_EXAMPLES)
app.add_typer(recipes_app, name="recipes")

RECIPES_LS_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes ls

  embedtrain recipes ls --json > recipes.json
"""


@recipes_app.command("ls", epilog=RECIPES_LS_EXAMPLES)
def recipes_ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Every recipe of the catalogue: model kind, losses, training data, purpose and expected time."""
    from embedtrain.commands.recipes import catalogue, recipe_table

    with _user_errors():
        recipes = catalogue()
    if as_json:
        typer.echo(json.dumps([recipe.as_json() for recipe in recipes], indent=2))
    else:
        console.print(recipe_table(recipes))


RECIPES_SHOW_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes show stsb

  embedtrain recipes show splade-nq > splade-nq.yaml
"""


@recipes_app.command("show", epilog=RECIPES_SHOW_EXAMPLES)
def recipes_show(name: Annotated[str, typer.Argument(help="The recipe's name (see `embedtrain recipes ls`).",
                                                      show_default=False)]) -> None:
    """Print a recipe of the catalogue as it is."""
    from embedtrain.commands.recipes import read_recipe

    with _user_errors():
        recipe = read_recipe(name)
    typer.echo(recipe.text, nl=False)


RECIPES_CP_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain recipes cp stsb

  embedtrain recipes cp quickstart my-recipes/

  embedtrain recipes cp nli-mnrl nli.yaml --force
"""


@recipes_app.command("cp", epilog=RECIPES_CP_EXAMPLES)
def recipes_cp(
    name: Annotated[str, typer.Argument(help="The recipe's name (see `embedtrain recipes ls`).", show_default=False)],
    destination: Annotated[str | None, typer.Argument(help="A file, or a folder to copy NAME.yaml into (an existing "
                                                           "one, or a path ending with /); default: ./NAME.yaml.",
                                                      show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Copy a recipe to edit and train it. The copy starts with a yaml-language-server comment naming
    recipe.schema.json beside it (write that with `embedtrain schema --output`); data that ships with the recipe
    is copied to NAME-data/ beside it."""
    from embedtrain.commands.recipes import SCHEMA_FILE, copy_recipe

    with _user_errors():
        copied = copy_recipe(name, destination, force=force)
    console.print(f"wrote {escape(str(copied.recipe))}", soft_wrap=True)
    for path in copied.data:
        console.print(f"wrote {escape(str(path))}", soft_wrap=True)
    schema = copied.recipe.parent / SCHEMA_FILE
    if not schema.exists():
        console.print(f"for completion and checks in editors: embedtrain schema --output {escape(str(schema))}",
                      soft_wrap=True)


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


class EmbeddingKind(str, Enum):
    """How `mine` and `score` build an embedding model (a cross-encoder is recognised from its folder)."""

    dense = "dense"
    sparse = "sparse"


class CrossEncoderActivation(str, Enum):
    """What a cross-encoder's logits become (embedtrain.modules.dense.Activation, not imported: it loads torch)."""

    identity = "identity"
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"
    gelu = "gelu"


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
    with _user_errors():
        outcome = evaluation.run_eval(model, request)
    console.print(f"[bold]model[/bold] {escape(model)}", soft_wrap=True)
    console.print(metrics_table("evaluation", outcome.metrics))
    if outcome.failures:
        _fail("below threshold: " + "; ".join(outcome.failures), ExitCode.BELOW_THRESHOLD)


MINE_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain mine --data pairs.csv --model sentence-transformers/all-MiniLM-L6-v2 --output mined.parquet

  embedtrain mine --data trecqa/train_pairs.csv --model ./my-model --output mined.jsonl --range-min 5 --range-max 50 --relative-margin 0.05 --sampling random

  embedtrain mine --data pairs.csv --corpus passages.jsonl --corpus-column text --model ./my-model --output hard.parquet --output-format n-tuple --num-negatives 5 --output-scores
"""


@app.command(epilog=MINE_EXAMPLES)
def mine(
    data: Annotated[str, typer.Option("--data", help="(anchor, positive) pairs, or labelled pairs (anchor, text, "
                                                     "label 0/1) whose label-1 rows are the positives.",
                                      show_default=False)],
    model: Annotated[str, typer.Option("--model", help="The embedding model (dense or sparse): a folder or hub id.",
                                       show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write: .parquet or .jsonl (and "
                                                                "OUTPUT.provenance.json beside it).", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="Split of --data.")] = "train",
    columns: Annotated[str | None, typer.Option("--columns", metavar="INPUT=COLUMN,...",
                                                help="e.g. anchor=question,positive=answer[,label=label]; default: "
                                                     "by position, the label by name.")] = None,
    corpus: Annotated[str | None, typer.Option("--corpus", help="More candidate texts (a file or hub id), beside the "
                                                                "positives.")] = None,
    corpus_column: Annotated[str | None, typer.Option("--corpus-column", help="The text column of --corpus (needed "
                                                                              "when it has several).")] = None,
    rescore: Annotated[str | None, typer.Option("--rescore", help="Re-score the candidates with this model (a "
                                                                  "cross-encoder, or an embedding model); the "
                                                                  "filters and scores then use its scores.")] = None,
    rescore_activation: Annotated[CrossEncoderActivation | None, typer.Option(
        "--rescore-activation", show_default=False, help="The activation of the --rescore cross-encoder's scores, in "
                                                         "place of its own (identity: its logits).")] = None,
    kind: Annotated[EmbeddingKind | None, typer.Option("--kind", show_default=False,
                                                   help="Build --model as dense or sparse (default: a saved model's "
                                                        "own kind, else dense).")] = None,
    num_negatives: Annotated[int | None, typer.Option("--num-negatives", help="Negatives per query (default: 3).",
                                                      show_default=False)] = None,
    range_min: Annotated[int | None, typer.Option("--range-min", help="Skip this many of the best candidates left "
                                                                      "after the filters (default: 0).",
                                                  show_default=False)] = None,
    range_max: Annotated[int | None, typer.Option("--range-max", help="Keep candidates up to this rank (default: "
                                                                      "enough for num_negatives).",
                                                  show_default=False)] = None,
    absolute_margin: Annotated[float | None, typer.Option(
        "--absolute-margin", help="Keep a candidate only if it scores this much below the query's lowest positive.",
        show_default=False)] = None,
    relative_margin: Annotated[float | None, typer.Option(
        "--relative-margin", help="Keep a candidate only if it scores this share (e.g. 0.05) below the lowest "
                                  "positive.", show_default=False)] = None,
    max_score: Annotated[float | None, typer.Option("--max-score", help="Drop candidates scoring above this.",
                                                    show_default=False)] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Drop candidates scoring below this.",
                                                    show_default=False)] = None,
    sampling: Annotated[str | None, typer.Option("--sampling", help="top (the best left) or random (default: top).",
                                                 show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of --sampling random (default: 0).",
                                             show_default=False)] = None,
    output_format: Annotated[str | None, typer.Option(
        "--output-format", help="triplet, n-tuple, labeled-pair or labeled-list (default: triplet).",
        show_default=False)] = None,
    output_scores: Annotated[bool, typer.Option("--output-scores", help="Add the scores (labeled formats: in place "
                                                                        "of the 0/1 labels).")] = False,
    query_prompt: Annotated[str | None, typer.Option("--query-prompt", help="Prefix for queries.")] = None,
    query_prompt_name: Annotated[str | None, typer.Option("--query-prompt-name", help="A named prompt of the model "
                                                                                      "for queries.")] = None,
    corpus_prompt: Annotated[str | None, typer.Option("--corpus-prompt", help="Prefix for corpus texts.")] = None,
    corpus_prompt_name: Annotated[str | None, typer.Option("--corpus-prompt-name", help="A named prompt of the "
                                                                                        "model for corpus texts.")] = None,
    similarity: Annotated[str | None, typer.Option("--similarity", help="cosine, dot, euclidean or manhattan "
                                                                        "(default: the model's).",
                                                   show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Texts (pairs when re-scoring) per forward "
                                                                        "pass (default: 32).", show_default=False)] = None,
    chunk_size: Annotated[int | None, typer.Option("--chunk-size", help="Queries and corpus texts scored at once "
                                                                        "(default: 8192).", show_default=False)] = None,
    search: Annotated[str | None, typer.Option("--search", help="exact, or faiss (pip install faiss-cpu) "
                                                                "(default: exact).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """Mine hard negatives for (query, positive) pairs with an embedding model, by the rules of the reference's
    mine_hard_negatives; write them as training rows with a provenance sidecar, and show what was kept and why."""
    from embedtrain.commands.mine import MineRequest, mining_report, run_mine
    from embedtrain.console import RichProgress

    given = {"num_negatives": num_negatives, "range_min": range_min, "range_max": range_max,
             "absolute_margin": absolute_margin, "relative_margin": relative_margin, "max_score": max_score,
             "min_score": min_score, "sampling": sampling, "seed": seed, "output_format": output_format,
             "output_scores": output_scores or None, "query_prompt": query_prompt,
             "query_prompt_name": query_prompt_name, "corpus_prompt": corpus_prompt,
             "corpus_prompt_name": corpus_prompt_name, "similarity": similarity, "batch_size": batch_size,
             "chunk_size": chunk_size, "search": search}
    request = MineRequest(data, model, output, split=split, columns=columns, corpus=corpus, corpus_column=corpus_column,
                          rescore=rescore, rescore_activation=rescore_activation.value if rescore_activation else None,
                          kind=kind.value if kind else None, force=force,
                          options={key: value for key, value in given.items() if value is not None})
    with _user_errors(), RichProgress() as progress:
        outcome = run_mine(request, progress)
    console.print(mining_report(outcome))


SCORE_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain score --data mined.parquet --model cross-encoder/ms-marco-MiniLM-L6-v2 --output scored.parquet

  embedtrain score --data triplets.jsonl --model ./teacher --output margins.jsonl --margins --columns query=q,positive=p,negative=n

  embedtrain score --data mined.parquet --model ./teacher --output rescored.parquet --replace-label --force
"""


@app.command(epilog=SCORE_EXAMPLES)
def score(
    data: Annotated[str, typer.Option("--data", help="(query, positive, negatives...) rows: a file or hub id.",
                                      show_default=False)],
    model: Annotated[str, typer.Option("--model", help="The teacher: a cross-encoder, or an embedding model (its "
                                                       "similarity of query and text).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write: .parquet or .jsonl (and "
                                                                "OUTPUT.provenance.json beside it).", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="Split of --data.")] = "train",
    columns: Annotated[str | None, typer.Option("--columns", metavar="INPUT=COLUMN,...",
                                                help="e.g. query=q,positive=p,negative=n1,negative=n2; default: by "
                                                     "position.")] = None,
    margins: Annotated[bool, typer.Option("--margins", help="Write positive - negative_i margins (column label) "
                                                            "instead of the scores (column scores).")] = False,
    activation: Annotated[CrossEncoderActivation | None, typer.Option(
        "--activation", show_default=False, help="A cross-encoder --model's activation, in place of its own "
                                                 "(identity: its logits).")] = None,
    replace_label: Annotated[bool, typer.Option("--replace-label", help="Drop the data's label column and write the "
                                                                        "scores in its place.")] = False,
    kind: Annotated[EmbeddingKind | None, typer.Option("--kind", show_default=False,
                                                       help="Build an embedding --model as dense or sparse.")] = None,
    similarity: Annotated[str | None, typer.Option("--similarity", help="An embedding model's similarity "
                                                                        "(default: the model's).",
                                                   show_default=False)] = None,
    query_prompt: Annotated[str | None, typer.Option("--query-prompt", help="Prefix for queries.")] = None,
    query_prompt_name: Annotated[str | None, typer.Option("--query-prompt-name", help="A named prompt for "
                                                                                      "queries.")] = None,
    document_prompt: Annotated[str | None, typer.Option("--document-prompt", help="Prefix for the other texts.")] = None,
    document_prompt_name: Annotated[str | None, typer.Option("--document-prompt-name", help="A named prompt for the "
                                                                                           "other texts.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Texts or pairs per forward pass "
                                                                        "(default: 32).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """Add a teacher's scores to (query, positive, negatives...) rows: the labels of MarginMSE, DistillKLDiv and
    their sparse and cross-encoder namesakes."""
    from embedtrain.commands.score import ScoreRequest, run_score, scoring_report
    from embedtrain.console import RichProgress

    given = {"margins": margins or None, "activation": activation.value if activation else None,
             "similarity": similarity, "query_prompt": query_prompt,
             "query_prompt_name": query_prompt_name, "document_prompt": document_prompt,
             "document_prompt_name": document_prompt_name, "batch_size": batch_size}
    request = ScoreRequest(data, model, output, split=split, columns=columns, kind=kind.value if kind else None,
                           replace_label=replace_label, force=force,
                           options={key: value for key, value in given.items() if value is not None})
    with _user_errors(), RichProgress() as progress:
        outcome = run_score(request, progress)
    console.print(scoring_report(outcome))


REPORT_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain report runs/stsb

  embedtrain report runs/stsb --json > stsb-run.json
"""


@app.command(epilog=REPORT_EXAMPLES)
def report(
    run_dir: Annotated[Path, typer.Argument(help="The output directory of a run (training.output_dir).",
                                            show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print run.json with the progress metrics.jsonl shows "
                                                         "(latest step, throughput, latest evaluation) as JSON.")] = False,
) -> None:
    """Sum up a finished or running run: status, steps, time and throughput, losses, the final (or latest) metrics
    and the best checkpoint, and where its model, card, plots and tracker logs are."""
    from embedtrain.commands.report import read_run, report_view

    with _user_errors():
        summary = read_run(run_dir)
    if as_json:
        typer.echo(json.dumps(summary.as_json(), indent=2))
    else:
        console.print(report_view(summary))


SCHEMA_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain schema > recipe.schema.json

  embedtrain schema --output recipe.schema.json --force
"""


@app.command(epilog=SCHEMA_EXAMPLES)
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the schema to this file instead of "
                                                                       "stdout.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output file.")] = False,
) -> None:
    """Print the JSON schema of a recipe (every loss and evaluator with its parameters), for editors and tools.

    A recipe that starts with `# yaml-language-server: $schema=recipe.schema.json` gets completion and checks in
    editors that use the YAML language server.
    """
    from embedtrain.commands.schema import schema_text, write_schema

    with _user_errors():
        text = schema_text()
        if output is not None:
            write_schema(output, text, force=force)
    if output is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"wrote the recipe schema to {escape(str(output))}", soft_wrap=True)


PUSH_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain push runs/stsb/final my-user/stsb-minilm --private

  embedtrain push runs/stsb/final my-org/stsb-minilm --revision v2 --commit-message "lr 3e-5" --checkpoints
"""


@app.command(epilog=PUSH_EXAMPLES)
def push(
    model_dir: Annotated[Path, typer.Argument(help="A saved model, e.g. OUTPUT_DIR/final.", show_default=False)],
    repo_id: Annotated[str, typer.Argument(help="NAME or NAMESPACE/NAME; created if missing.", show_default=False)],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    revision: Annotated[str | None, typer.Option("--revision", help="Branch to push to, created if missing "
                                                                    "(default: main).", show_default=False)] = None,
    commit_message: Annotated[str | None, typer.Option("--commit-message", show_default=False,
                                                       help="Default: Upload model with embedtrain.")] = None,
    checkpoints: Annotated[bool, typer.Option("--checkpoints", help="Also push the run's checkpoints "
                                                                    "(RUN/checkpoints for RUN/final) to checkpoints/.")] = False,
) -> None:
    """Upload a saved model with its card to a Hugging Face Hub repo. The token comes from HF_TOKEN or `hf auth
    login`; HF_ENDPOINT selects another Hub."""
    from embedtrain.commands.push import PushRequest, run_push

    request = PushRequest(model_dir, repo_id, private=private, revision=revision, commit_message=commit_message,
                          checkpoints=checkpoints)
    with _user_errors():
        outcome = run_push(request)
    console.print(f"pushed {escape(str(model_dir))} to {escape(outcome.model.url)}\ncommit {outcome.model.commit} "
                  f"({escape(outcome.model.commit_url)})", soft_wrap=True)
    if outcome.checkpoints is not None:
        console.print(f"pushed {len(outcome.checkpoint_names)} checkpoints to checkpoints/ in commit "
                      f"{outcome.checkpoints.commit}", soft_wrap=True)


@dataclass
class _CliOptions:
    verbose: bool = False  # --verbose: tracebacks are printed too


_options = _CliOptions()


class _user_errors:
    """The error boundary of every command: each error becomes a message and its exit code, without a traceback
    (printed only with --verbose). An error embedtrain does not expect is a bug: exit 4 with a one-line summary
    and the file its full traceback was written to (`error.log` in `run_dir` once the run directory is known)."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None

    def __enter__(self) -> "_user_errors":
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if error is None or isinstance(error, (typer.Exit, SystemExit)):
            return False
        if not isinstance(error, (Exception, KeyboardInterrupt)):
            return False  # GeneratorExit and the like are the interpreter's, not failures to report
        if _options.verbose:
            typer.echo("".join(traceback.format_exception(error)), err=True)
        if isinstance(error, EmbedtrainError):
            _fail(str(error), error.exit_code)
        if isinstance(error, KeyboardInterrupt):
            _fail("interrupted; continue later with --resume (from the latest checkpoint)", ExitCode.RUNTIME_FAILURE)
        if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
            _fail(f"out of memory ({type(error).__name__}); lower training.batch_size or model.max_seq_length",
                  ExitCode.RUNTIME_FAILURE)
        _fail(_unexpected_error_message(error, _write_traceback(error, self.run_dir)), ExitCode.RUNTIME_FAILURE)
        return False


def _unexpected_error_message(error: BaseException, log: Path | None) -> str:
    lines = str(error).strip().splitlines()
    summary = f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__
    where = f"the full traceback is in {log}" if log else "rerun with --verbose for the full traceback"
    return f"unexpected error ({summary}); {where}. This is a bug in embedtrain: please report it with that traceback"


def _write_traceback(error: BaseException, run_dir: Path | None) -> Path | None:
    """Write the traceback into the run directory when it exists, else into a file in the system temp dir."""
    text = "".join(traceback.format_exception(error))
    rank = os.environ.get("RANK", "0")  # set by `accelerate launch`: one file per process
    name = "error.log" if rank in ("", "0") else f"error-rank{rank}.log"
    if run_dir is not None and run_dir.is_dir():
        try:
            (run_dir / name).write_text(text, encoding="utf-8")
            return run_dir / name
        except OSError:
            pass  # e.g. a read-only run directory: the temp dir below
    try:
        handle, path = tempfile.mkstemp(prefix="embedtrain-error-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        return Path(path)
    except OSError:
        return None


def _fail(message: str, code: ExitCode) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)  # paths stay copyable
    raise typer.Exit(int(code))


def _configure_logging(verbose: bool) -> None:
    handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    logging.getLogger("embedtrain").setLevel(logging.DEBUG if verbose else logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def main() -> None:
    app()

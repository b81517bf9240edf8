"""Commands around a training run: train, validate-dataset (its data), report (its outcome) and push (its model)."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from embedtrain.cli.app import COLUMNS_HELP, app
from embedtrain.cli.boundary import fail, options, user_errors
from embedtrain.console import console
from embedtrain.errors import ExitCode

TRAIN_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain train recipes/quickstart.yaml --dry-run

  embedtrain train recipes/stsb.yaml --set training.learning_rate=3e-5 --fail-under sts-dev_spearman_cosine=0.8

  embedtrain train recipes/stsb.yaml --output-dir runs/stsb-2 --resume

  embedtrain train recipes/stsb.yaml --launch configs/multi-gpu.yaml
"""


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
    with user_errors() as boundary:
        loaded = load_recipe(recipe, overrides)
        thresholds = training_thresholds(loaded, list(fail_under or []))
        if launch is not None:
            from embedtrain.commands.launch import check_launch, launch_training, refuse_nested_launch, train_arguments

            refuse_nested_launch()
            config = check_launch(launch, loaded)
            if not dry_run:  # a dry run plans here, in this process, below
                arguments = train_arguments(recipe, given_overrides, resume, output_dir, list(fail_under or []),
                                            options.verbose)
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
        fail("below threshold: " + "; ".join(failures), ExitCode.BELOW_THRESHOLD)


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
    with user_errors():
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

    with user_errors():
        summary = read_run(run_dir)
    if as_json:
        typer.echo(json.dumps(summary.as_json(), indent=2))
    else:
        console.print(report_view(summary))


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
    with user_errors():
        outcome = run_push(request)
    console.print(f"pushed {escape(str(model_dir))} to {escape(outcome.model.url)}\ncommit {outcome.model.commit} "
                  f"({escape(outcome.model.commit_url)})", soft_wrap=True)
    if outcome.checkpoints is not None:
        console.print(f"pushed {len(outcome.checkpoint_names)} checkpoints to checkpoints/ in commit "
                      f"{outcome.checkpoints.commit}", soft_wrap=True)

"""`embedtrain validate-dataset`: check data against what its loss or evaluator needs, without training."""

from dataclasses import asdict, dataclass, field
from pathlib import Path

from embedtrain.commands.columns import parse_columns
from embedtrain.data.checks import DatasetReport, inspect_source
from embedtrain.data.source import DataSource
from embedtrain.errors import RecipeError, did_you_mean
from embedtrain.losses import LOSSES, loss_contract
from embedtrain.models.tokenization import load_tokenization, recipe_tokenization
from embedtrain.recipe.loading import load_recipe
from embedtrain.recipe.overrides import parse_overrides
from embedtrain.recipe.plan import plan_data
from embedtrain.recipe.schema import Recipe


@dataclass(frozen=True)
class ValidationRequest:
    """What the command line asked for: a recipe (with `--set` overrides), or one data source and its loss."""

    recipe: Path | None = None
    overrides: list[str] = field(default_factory=list)
    data: str | None = None
    split: str = "train"
    loss: str | None = None
    loss_options: list[str] = field(default_factory=list)
    columns: str | None = None
    model: str | None = None
    strict: bool = False


@dataclass(frozen=True)
class Validation:
    """The reports of the checked datasets, the problems of the evaluators' data, and whether the check failed."""

    reports: list[DatasetReport]
    evaluator_errors: list[str]
    failed: bool

    def as_json(self) -> dict:
        return {"ok": not self.failed, "datasets": [report_as_json(r) for r in self.reports],
                "evaluator_errors": self.evaluator_errors}


def run_validation(request: ValidationRequest) -> Validation:
    """Check a recipe's data or one data source; it fails on an error, or on a warning with `strict`."""
    if (request.recipe is None) == (request.data is None):
        raise RecipeError("give either a RECIPE or --data (with --loss), not both or neither")
    if request.recipe is not None:
        reports, evaluator_errors = validate_recipe(load_recipe(request.recipe, request.overrides))
    else:
        if request.loss is None:
            raise RecipeError("--data needs --loss, the loss the data is for (see the README's loss table)")
        columns = parse_columns(request.columns) if request.columns else None
        reports = [validate_file(request.data, request.loss, split=request.split, columns=columns,
                                 loss_options=parse_overrides(request.loss_options, "--loss-option"),
                                 model=request.model)]
        evaluator_errors = []
    failed = (any(r.errors for r in reports) or bool(evaluator_errors)
              or (request.strict and any(r.warnings for r in reports)))
    return Validation(reports, evaluator_errors, failed)


def validate_recipe(recipe: Recipe) -> tuple[list[DatasetReport], list[str]]:
    """Reports of every training and eval dataset, and the problems of the evaluators' data."""
    tokenization = recipe_tokenization(recipe.model)
    plan = plan_data(recipe, tokenization)
    return plan.reports, plan.evaluator_errors


def validate_file(source: str, loss: str, *, split: str = "train", columns: dict[str, str | list[str]] | None = None,
                  loss_options: dict | None = None, model: str | None = None) -> DatasetReport:
    """Report on one data source checked against the loss `loss` (with `loss_options` as its parameters)."""
    if loss not in LOSSES:
        raise RecipeError(f"--loss: unknown loss {loss!r}{did_you_mean(loss, list(LOSSES))}; "
                          f"known: {', '.join(sorted(LOSSES))}")
    try:
        params = LOSSES[loss].params_model.model_validate({"type": loss, **(loss_options or {})})
    except ValueError as error:
        raise RecipeError(f"--loss-option: invalid parameters for {loss}: {error}") from None
    tokenization = load_tokenization(model) if model else None
    config = DataSource(source=source, split=split, columns=columns)
    report, _ = inspect_source(config, loss_contract(params), source, tokenization)
    return report


def report_as_json(report: DatasetReport) -> dict:
    return {
        "dataset": report.where,
        "source": report.source,
        "rows": report.row_count,
        "columns": None if report.mapping is None else report.mapping.describe(),
        "mined": report.mined,
        "errors": report.errors,
        "warnings": report.warnings,
        "duplicates": report.duplicates,
        "token_lengths": {column: asdict(stats) for column, stats in report.token_stats.items()},
    }

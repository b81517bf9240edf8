"""`embedtrain validate-dataset`: check data against what its loss or evaluator needs, without training."""

from dataclasses import asdict

from embedtrain.data.checks import DatasetReport, inspect_source
from embedtrain.data.source import DataSource
from embedtrain.errors import RecipeError, did_you_mean
from embedtrain.losses import LOSSES, loss_contract
from embedtrain.models.tokenization import load_tokenization
from embedtrain.recipe.plan import plan_data
from embedtrain.recipe.schema import Recipe


def validate_recipe(recipe: Recipe) -> tuple[list[DatasetReport], list[str]]:
    """Reports of every training and eval dataset, and the problems of the evaluators' data."""
    model = recipe.model
    tokenization = load_tokenization(model.base, revision=model.revision, max_seq_length=model.max_seq_length,
                                     trust_remote_code=model.trust_remote_code)
    plan = plan_data(recipe, tokenization)
    return plan.reports, plan.evaluator_errors


def validate_file(source: str, loss: str, *, split: str = "train", columns: dict[str, str | list[str]] | None = None,
                  loss_options: dict[str, str] | None = None, model: str | None = None) -> DatasetReport:
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


def parse_columns(text: str) -> dict[str, str | list[str]]:
    """`anchor=q,positive=p,negative=n1,negative=n2` -> {anchor: q, positive: p, negative: [n1, n2]}."""
    mapping: dict[str, str | list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, separator, column = item.partition("=")
        if not separator or not role or not column:
            raise RecipeError(f"--columns: {item!r} is not INPUT=COLUMN (e.g. anchor=question,positive=answer)")
        if role in mapping:  # a repeated input (hard negatives) given several times
            previous = mapping[role]
            mapping[role] = [*(previous if isinstance(previous, list) else [previous]), column]
        else:
            mapping[role] = column
    return mapping


def report_as_json(report: DatasetReport) -> dict:
    return {
        "dataset": report.where,
        "source": report.source,
        "rows": report.row_count,
        "columns": None if report.mapping is None else report.mapping.describe(),
        "errors": report.errors,
        "warnings": report.warnings,
        "duplicates": report.duplicates,
        "token_lengths": {column: asdict(stats) for column, stats in report.token_stats.items()},
    }

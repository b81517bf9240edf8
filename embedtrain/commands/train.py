"""`embedtrain train --fail-under METRIC=VALUE`: minimums for the final model's metrics, for CI jobs that train a
recipe. Read as `embedtrain eval --fail-under` reads them, checked against the metrics the recipe's evaluation
produces before anything runs, and against the final model's evaluation once it is saved (exit code 5)."""

from embedtrain.commands.eval import check_threshold_names, parse_thresholds
from embedtrain.recipe.schema import Recipe


def training_thresholds(recipe: Recipe, items: list[str]) -> dict[str, float]:
    """{metric: minimum} of the `--fail-under` items; RecipeError for a malformed item or a metric the recipe's
    evaluators and eval datasets do not produce."""
    thresholds = parse_thresholds(items)
    check_threshold_names(thresholds, recipe.metric_names())
    return thresholds

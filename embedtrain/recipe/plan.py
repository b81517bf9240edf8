"""From a recipe to its checked data: every dataset loaded and checked against its loss, every evaluator built.

All problems of all datasets and evaluators are collected before any is raised, so one run reports them all.
"""

import logging
from dataclasses import dataclass

from embedtrain.data.checks import DatasetReport, LoadedData, Tokenization, inspect_source, raise_on_errors
from embedtrain.data.contract import ColumnContract
from embedtrain.data.training_data import PreparedDataset
from embedtrain.errors import DataError
from embedtrain.evaluation import Evaluator, build_evaluator
from embedtrain.losses import loss_contract
from embedtrain.models.cross_encoder_build import cross_encoder_num_labels
from embedtrain.recipe.checks import SPLITS, dataset_problems, declared_routes, route_of
from embedtrain.recipe.schema import DatasetConfig, Recipe
from embedtrain.recipe.training import eval_loss_metric

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataPlan:
    """A recipe's data after the checks: the reports, and what training uses (`train`, `eval`, `evaluators`),
    which hold only the datasets and evaluators that loaded without error."""

    reports: list[DatasetReport]
    evaluator_errors: list[str]
    train: dict[str, PreparedDataset]
    eval: dict[str, PreparedDataset]
    evaluators: list[Evaluator]

    def raise_on_errors(self) -> None:
        """One DataError listing every problem of every dataset and evaluator."""
        raise_on_errors(self.reports, self.evaluator_errors)

    def primary_metrics(self) -> list[str]:
        """The headline metric of each evaluation: each evaluator's, and each eval dataset's loss."""
        return [evaluator.primary_metric for evaluator in self.evaluators] + [eval_loss_metric(name) for name in self.eval]

    def log_warnings(self) -> None:
        for report in self.reports:
            for warning in report.warnings:
                logger.warning(warning)


def plan_data(recipe: Recipe, tokenization: Tokenization | None = None) -> DataPlan:
    """Load and check every dataset against its loss and the recipe, and build every evaluator (loading its data).

    `tokenization` (the model's tokenizer) adds the token-length statistics; no model weights are needed.
    """
    routes = declared_routes(recipe.model)
    # A cross-encoder's class labels must be below its number of labels (one logit per class).
    num_labels = cross_encoder_num_labels(recipe.model) if recipe.model.kind == "cross_encoder" else None
    reports, prepared = [], {split: {} for split in SPLITS}
    for split in SPLITS:
        for name, config in getattr(recipe.datasets, split).items():
            loss_name = recipe.loss_name_for(config)
            contract = loss_contract(recipe.losses[loss_name], num_labels)
            report, data = inspect_source(config, contract, f"datasets.{split}.{name}", tokenization, config.streaming)
            reports.append(report)
            if data is None:
                continue
            if data.mapping.inferred:
                logger.info("%s: no `columns:` given; using %s (label by name, inputs by position)",
                            report.where, data.mapping.describe())
            for problem in dataset_problems(recipe, split, name, data.mapping, contract, routes):
                report.error(problem)
            prepared[split][name] = _prepared(name, config, data, contract, loss_name, recipe.model.prompts)
    evaluators, errors = [], []
    for index, params in enumerate(recipe.evaluators):
        try:
            evaluators.append(build_evaluator(params, f"evaluators[{index}] ({params.name})"))
        except DataError as error:
            errors += error.problems
    return DataPlan(reports, errors, prepared["train"], prepared["eval"], evaluators)


def _prepared(name: str, config: DatasetConfig, data: LoadedData, contract: ColumnContract, loss_name: str,
              prompt_texts: dict[str, str]) -> PreparedDataset:
    """The dataset as training reads it: each input with its prompt text and its route."""
    prompts, routes = (), ()
    if config.prompts is not None:
        names = [config.prompts if isinstance(config.prompts, str) else config.prompts.get(contract.base_input(role))
                 for role, _ in data.mapping.inputs]
        prompts = tuple(prompt_texts[name] if name else None for name in names)
    if config.router_mapping is not None:
        routes = tuple(route_of(config.router_mapping, role, column, contract) for role, column in data.mapping.inputs)
    return PreparedDataset(name, data.rows, data.mapping, contract, loss_name, prompts, routes, config.weight,
                           data.stream)

"""Every dataset and evaluator of a recipe, loaded and checked together, so that all problems are reported at once."""

import logging
from dataclasses import dataclass

from embedtrain.data.checks import DatasetReport, Tokenization, inspect_source, raise_on_errors
from embedtrain.data.training_data import PreparedDataset
from embedtrain.errors import DataError
from embedtrain.evaluation import Evaluator, build_evaluator
from embedtrain.losses import loss_contract
from embedtrain.recipe.schema import Recipe

logger = logging.getLogger(__name__)


@dataclass
class RecipeData:
    train: dict[str, DatasetReport]
    eval: dict[str, DatasetReport]
    evaluators: list[Evaluator]
    evaluator_errors: list[str]

    @property
    def reports(self) -> list[DatasetReport]:
        return [*self.train.values(), *self.eval.values()]

    def raise_on_errors(self) -> None:
        raise_on_errors(self.reports, self.evaluator_errors)

    def prepared(self, recipe: Recipe, split: str) -> dict[str, PreparedDataset]:
        """The checked datasets of `split`, ready for training (call after `raise_on_errors`)."""
        entries = getattr(recipe.datasets, split)
        return {name: PreparedDataset(name, report.rows, report.mapping, report.contract, recipe.loss_name_for(entries[name]))
                for name, report in getattr(self, split).items()}


def check_recipe_data(recipe: Recipe, tokenization: Tokenization | None = None) -> RecipeData:
    """Load and check every dataset against its loss and build every evaluator (loading its data)."""
    reports = {}
    for split in ("train", "eval"):
        reports[split] = {}
        for name, config in getattr(recipe.datasets, split).items():
            contract = loss_contract(recipe.losses[recipe.loss_name_for(config)])
            report = inspect_source(config, contract, f"datasets.{split}.{name}", tokenization)
            if report.mapping is not None and report.mapping.inferred:
                logger.info("%s: no `columns:` given; using %s (label by name, inputs by position)",
                            report.where, report.mapping.describe())
            if split == "train" and recipe.training.batch_sampler == "group_by_label" and not contract.label:
                report.error(f"{report.where}: training.batch_sampler group_by_label groups rows by their label, but "
                             f"loss {recipe.loss_name_for(config)!r} takes no label")
            reports[split][name] = report
    evaluators, errors = [], []
    for index, params in enumerate(recipe.evaluators):
        try:
            evaluators.append(build_evaluator(params, f"evaluators[{index}] ({params.name})"))
        except DataError as error:
            errors.append(str(error))
    return RecipeData(reports["train"], reports["eval"], evaluators, errors)

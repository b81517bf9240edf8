"""Every dataset and evaluator of a recipe, loaded and checked together, so that all problems are reported at once."""

import logging
from dataclasses import dataclass

from embedtrain.data.checks import DatasetReport, Tokenization, inspect_source, raise_on_errors
from embedtrain.data.training_data import PreparedDataset
from embedtrain.errors import DataError, did_you_mean
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
        return {name: PreparedDataset(name, report.rows, report.mapping, report.contract,
                                      recipe.loss_name_for(entries[name]),
                                      input_prompts(entries[name].prompts, report, recipe.model.prompts),
                                      report.stream)
                for name, report in getattr(self, split).items()}


def _base_role(role: str, contract) -> str:
    """negative_2 -> negative: a prompt given for the repeated input applies to each of its columns."""
    repeated = contract.repeated_input
    return repeated if repeated and role.startswith(f"{repeated}_") else role


def input_prompts(prompts: str | dict[str, str] | None, report: DatasetReport,
                  texts: dict[str, str]) -> tuple[str | None, ...]:
    """The prompt text for each input of the resolved mapping (names resolved through model.prompts)."""
    if prompts is None:
        return ()
    result = []
    for role, _ in report.mapping.inputs:
        name = prompts if isinstance(prompts, str) else prompts.get(_base_role(role, report.contract))
        result.append(texts[name] if name else None)
    return tuple(result)


def _check_prompt_roles(report: DatasetReport, prompts: str | dict[str, str] | None) -> None:
    if not isinstance(prompts, dict):
        return
    roles = [*report.contract.inputs, *([report.contract.repeated_input] if report.contract.repeated_input else [])]
    for role in prompts:
        if role not in roles:
            report.error(f"{report.where}.prompts: {role!r} is not an input of the loss{did_you_mean(role, roles)}; "
                         f"its inputs are {', '.join(roles)}")


def check_recipe_data(recipe: Recipe, tokenization: Tokenization | None = None) -> RecipeData:
    """Load and check every dataset against its loss and build every evaluator (loading its data)."""
    reports = {}
    for split in ("train", "eval"):
        reports[split] = {}
        for name, config in getattr(recipe.datasets, split).items():
            contract = loss_contract(recipe.losses[recipe.loss_name_for(config)])
            report = inspect_source(config, contract, f"datasets.{split}.{name}", tokenization, config.streaming)
            if report.mapping is not None and report.mapping.inferred:
                logger.info("%s: no `columns:` given; using %s (label by name, inputs by position)",
                            report.where, report.mapping.describe())
            _check_prompt_roles(report, config.prompts)
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

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
                                      report.stream, input_routes(entries[name].router_mapping, report))
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


def _route_of(router_mapping: dict[str, str], role: str, column: str, contract) -> str | None:
    """An input's route: given for the input (or its repeated base, negative for negative_2) or for its column."""
    for key in (role, _base_role(role, contract), column):
        if key in router_mapping:
            return router_mapping[key]
    return None


def input_routes(router_mapping: dict[str, str] | None, report: DatasetReport) -> tuple[str | None, ...]:
    """The router task of each input of the resolved mapping (the reference's `router_mapping`), () for none."""
    if router_mapping is None:
        return ()
    return tuple(_route_of(router_mapping, role, column, report.contract) for role, column in report.mapping.inputs)


def _check_router_mapping(report: DatasetReport, router_mapping: dict[str, str] | None) -> None:
    """Every key must name an input or a column that feeds one, and every input needs a route."""
    if router_mapping is None or report.mapping is None:
        return
    known = [name for role, column in report.mapping.inputs
             for name in (role, _base_role(role, report.contract), column)]
    for key in router_mapping:
        if key not in known:
            report.error(f"{report.where}.router_mapping: {key!r} is neither an input of the loss nor a column "
                         f"feeding one{did_you_mean(key, known)}; the inputs are "
                         f"{', '.join(f'{role} (column {column})' for role, column in report.mapping.inputs)}")
    unrouted = [role for role, column in report.mapping.inputs
                if _route_of(router_mapping, role, column, report.contract) is None]
    if unrouted:
        report.error(f"{report.where}.router_mapping: no route for input(s) {', '.join(unrouted)}; map each input "
                     f"to query or document")


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
            _check_router_mapping(report, config.router_mapping)
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

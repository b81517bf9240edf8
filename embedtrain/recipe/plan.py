"""From a recipe to its checked data: every dataset loaded and checked against its loss, every evaluator built.

All problems of all datasets and evaluators are collected before any is raised, so one run reports them all.

A dataset with a `mine:` step is checked as the pairs mining reads (and its corpus), and its loss against the columns
mining will write (known from the options before anything is mined); it becomes a `MiningStep`, which training
mines (engine/mined_data.py) and `with_mined` then checks and prepares like any other dataset.
"""

import logging
from dataclasses import dataclass, field, replace

from datasets import Dataset

from embedtrain.data.checks import (
    Batching,
    DatasetReport,
    LoadedData,
    Tokenization,
    inspect_rows,
    inspect_source,
    raise_on_errors,
)
from embedtrain.data.contract import ColumnContract, ColumnMapping, resolve_columns
from embedtrain.data.source import public_name
from embedtrain.data.training_data import PreparedDataset
from embedtrain.errors import DataError, RecipeError
from embedtrain.evaluation import Evaluator, build_evaluator
from embedtrain.evaluation.mining.formats import LABELS_WRITTEN, mapping_for, mined_columns
from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.evaluation.mining.pairs import MiningInput, PairRows, inspect_pairs, load_corpus, prepare_input
from embedtrain.losses import loss_contract
from embedtrain.models.cross_encoder_build import cross_encoder_num_labels
from embedtrain.recipe.checks import SPLITS, dataset_problems, declared_routes, route_of
from embedtrain.recipe.schema import DatasetConfig, Recipe
from embedtrain.recipe.training import eval_loss_metric

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiningStep:
    """A dataset whose negatives are mined before training: its checked pairs and corpus, and the loss that will read
    the mined rows (`mapping`: how, known before mining)."""

    split: str
    name: str
    config: DatasetConfig
    pairs: PairRows
    corpus: list[str] | None
    data: MiningInput
    """The pairs and corpus as mining reads them (queries, their positives, the corpus; deduplicated)."""
    contract: ColumnContract
    mapping: ColumnMapping
    loss_name: str

    @property
    def where(self) -> str:
        return f"datasets.{self.split}.{self.name}"

    @property
    def options(self) -> MiningOptions:
        return self.config.mine.options()


@dataclass(frozen=True)
class DataPlan:
    """A recipe's data after the checks: the reports, and what training uses (`train`, `eval`, `evaluators`),
    which hold only the datasets and evaluators that loaded without error. The datasets of `mining` are in `train`
    and `eval` once mined (`with_mined`)."""

    reports: list[DatasetReport]
    evaluator_errors: list[str]
    train: dict[str, PreparedDataset]
    eval: dict[str, PreparedDataset]
    evaluators: list[Evaluator]
    mining: list[MiningStep] = field(default_factory=list)

    def raise_on_errors(self) -> None:
        """One DataError listing every problem of every dataset and evaluator."""
        raise_on_errors(self.reports, self.evaluator_errors)

    def primary_metrics(self) -> list[str]:
        """The headline metric of each evaluation: each evaluator's, and each eval dataset's loss."""
        return [evaluator.primary_metric for evaluator in self.evaluators] + [eval_loss_metric(name) for name in self.eval]

    def log_warnings(self, reports: list[DatasetReport] | None = None) -> None:
        """Log the warnings of `reports` (default: every report)."""
        for report in self.reports if reports is None else reports:
            for warning in report.warnings:
                logger.warning(warning)


def plan_data(recipe: Recipe, tokenization: Tokenization | None = None) -> DataPlan:
    """Load and check every dataset against its loss and the recipe, and build every evaluator (loading its data).

    `tokenization` (the model's tokenizer) adds the token-length statistics; no model weights are needed.
    """
    routes = declared_routes(recipe.model)
    # A cross-encoder's class labels must be below its number of labels (one logit per class).
    num_labels = cross_encoder_num_labels(recipe.model) if recipe.model.kind == "cross_encoder" else None
    reports, prepared, mining = [], {split: {} for split in SPLITS}, []
    for split in SPLITS:
        for name, config in getattr(recipe.datasets, split).items():
            loss_name = recipe.loss_name_for(config)
            contract = loss_contract(recipe.losses[loss_name], num_labels)
            if config.mine is not None:
                report, step = _mining_step(recipe, split, name, contract, tokenization, routes)
                reports.append(report)
                mining += [step] if step is not None else []
                continue
            report, data = inspect_source(config, contract, f"datasets.{split}.{name}", tokenization, config.streaming,
                                          batching_of(recipe, split))
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
    return DataPlan(reports, errors, prepared["train"], prepared["eval"], evaluators, mining)


def _mining_step(recipe: Recipe, split: str, name: str, contract: ColumnContract, tokenization: Tokenization | None,
                 routes: tuple[str, ...] | None) -> tuple[DatasetReport, MiningStep | None]:
    """The pairs and corpus of a dataset with `mine:`, checked, and its loss against the rows mining will write; the
    report holds every problem, and the step is None when there is one."""
    where, config = f"datasets.{split}.{name}", getattr(recipe.datasets, split)[name]
    mine, options = config.mine, config.mine.options()
    report, pairs = inspect_pairs(config, where, tokenization)
    corpus = None
    if mine.corpus is not None:
        try:
            corpus = load_corpus(mine.corpus.data_source(), mine.corpus.column, f"{where}.mine.corpus",
                                 f"{where}.mine.corpus.column")
        except (DataError, RecipeError) as error:
            report.error(str(error))
    # The column names come from the pairs; without them (unreadable data), the loss is still checked by position.
    anchor, positive = (pairs.anchor_column, pairs.positive_column) if pairs is not None else ("anchor", "positive")
    try:
        columns = mined_columns(anchor, positive, options)
    except DataError as error:
        report.error(f"{where}.mine: {error}")
        return report, None
    mapping = mapping_for(contract, options, anchor, positive)
    if mapping is None:
        report.error(_misfit(recipe, config, contract, options, columns, anchor, positive, where))
    else:
        report.mined = (f"by {public_name(mine.model)}, {options.output_format} rows ({', '.join(columns)}), read by "
                        f"loss {recipe.loss_name_for(config)!r} as {mapping.describe()}")
        for problem in dataset_problems(recipe, split, name, mapping, contract, routes):
            report.error(problem)
    if report.errors:
        return report, None
    try:
        data = prepare_input(pairs, corpus)
    except DataError as error:
        report.error(f"{where}: {error}")
        return report, None
    return report, MiningStep(split, name, config, pairs, corpus, data, contract, mapping, recipe.loss_name_for(config))


def _misfit(recipe: Recipe, config: DatasetConfig, contract: ColumnContract, options: MiningOptions,
            columns: list[str], anchor: str, positive: str, where: str) -> str:
    """Why the rows mining writes do not fit the dataset's loss, and the output formats that would."""
    loss_name = recipe.loss_name_for(config)
    fitting = [f"output_format: {output_format}" + (", output_scores: true" if scores else "")
               for output_format, scores in LABELS_WRITTEN
               if mapping_for(contract, options.model_copy(update={"output_format": output_format,
                                                                   "output_scores": scores}), anchor, positive)]
    advice = (f"the formats that fit it: {'; '.join(fitting)}" if fitting else
              "no format mining writes fits it: mine for a loss that takes (anchor, positive, negative...) rows, "
              "0/1 or scored pairs, or labelled lists")
    scores = " with scores" if options.output_scores else ""
    return (f"{where}.mine: loss {loss_name!r} ({recipe.losses[loss_name].type}) takes {contract.describe()}, but "
            f"mining writes {options.output_format} rows{scores} ({', '.join(columns)}); {advice}")


def with_mined(recipe: Recipe, plan: DataPlan, mined: dict[str, Dataset], tokenization: Tokenization | None
               ) -> DataPlan:
    """The plan with the rows of each mining step (`mined`: its `where` -> rows) checked against its loss (a report
    each, `<where> (mined)`) and prepared for training, the datasets in the recipe's order; the caller raises on the
    reports' errors, as for any plan."""
    reports, prepared = list(plan.reports), {"train": dict(plan.train), "eval": dict(plan.eval)}
    for step in plan.mining:
        rows = mined[step.where]
        report = DatasetReport(where=f"{step.where} (mined)", source=step.config.source, contract=step.contract,
                               row_count=len(rows))
        try:
            report.mapping = resolve_columns(rows.column_names, step.contract, None, [], report.where)
        except DataError as error:
            report.error(str(error))
        else:
            inspect_rows(report, LoadedData(rows, report.mapping), tokenization, batching_of(recipe, step.split))
            prepared[step.split][step.name] = _prepared(step.name, step.config, LoadedData(rows, report.mapping),
                                                        step.contract, step.loss_name, recipe.model.prompts)
        reports.append(report)
    ordered = {split: {name: prepared[split][name] for name in getattr(recipe.datasets, split)
                       if name in prepared[split]} for split in SPLITS}
    return replace(plan, reports=reports, train=ordered["train"], eval=ordered["eval"])


def batching_of(recipe: Recipe, split: str) -> Batching:
    """How the rows of a dataset of `split` are batched: by training.batch_sampler, or in order for evaluation."""
    sampler = recipe.training.batch_sampler if split == "train" else "in_order"
    return Batching(sampler, recipe.training.batch_size)


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

"""The recipe schema. Every section is strict (unknown keys are errors) and frozen once loaded.

Loss and evaluator entries are discriminated unions built from their registries, so adding a loss
or an evaluator adds it to the schema (and to its JSON schema) with no change here.
"""

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from embedtrain.config import StrictModel
from embedtrain.data.source import DataSource
from embedtrain.evaluation import EVALUATORS, metric_names
from embedtrain.evaluation.mining.options import MiningOptions, RescoreKind
from embedtrain.losses import loss_config_union
from embedtrain.models.config import ModelConfig
from embedtrain.modules.dense import Activation
from embedtrain.recipe.training import TrainingConfig, eval_loss_metric

LossConfig = loss_config_union()
# Union[...] of a tuple built at import time: the `X | Y` syntax cannot express a registry-sized union.
EvaluatorConfig = Annotated[Union[tuple(s.params_model for s in EVALUATORS.values())], Field(discriminator="type")]  # noqa: UP007


class MiningCorpus(StrictModel):
    """Texts the negatives may also come from, besides the positives (`embedtrain mine --corpus`)."""

    source: str = Field(description="hub dataset id or a local file or folder, as a dataset's source")
    subset: str | None = Field(None, description="hub configuration name")
    split: str = Field("train", description="split, with optional slicing such as train[:100000]")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    column: str | None = Field(None, description="the column holding the texts (needed when the data has several)")

    def data_source(self) -> DataSource:
        return DataSource(source=self.source, subset=self.subset, split=self.split, revision=self.revision)


class MineStep(MiningOptions):
    """A dataset's hard negatives, mined from its (anchor, positive) pairs by the first `train` and cached in the
    output directory (`embedtrain mine` as a recipe step). The options are those of `embedtrain mine` (`range_min`
    for --range-min, ...)."""

    model: str = Field(description="the embedding model that mines (dense or sparse): a hub id or a local folder")
    kind: Literal["dense", "sparse"] | None = Field(
        None, description="build a plain checkpoint as this kind of model (default: a saved model's own kind, else "
        "dense; sparse builds SPLADE from a masked-LM checkpoint)")
    rescore: str | None = Field(None, description="a cross-encoder (or an embedding model) that re-scores the "
                                "candidates; the margins, filters and ranking then use its scores")
    rescore_kind: RescoreKind = Field(
        "auto", description="what the `rescore` model is: auto (a saved model's own kind; a trained sequence "
        "classifier is a cross-encoder; a plain checkpoint is an error), cross_encoder (needs a trained "
        "classification head), dense or sparse (re-scores by the similarity of its embeddings, built as `kind` "
        "builds the mining model)")
    rescore_activation: Activation | None = Field(
        None, description="the activation a `rescore` cross-encoder's scores get, in place of its own (identity: "
        "its logits, unbounded like a dot-product student's scores; sigmoid: 0..1)")
    corpus: MiningCorpus | None = Field(None, description="more texts to mine negatives from (default: the "
                                        "positives of the data only)")

    @model_validator(mode="after")
    def _rescore_settings_need_rescore(self) -> "MineStep":
        if self.rescore_activation is not None and self.rescore is None:
            raise ValueError("rescore_activation applies to the scores of a `rescore` cross-encoder, and none is "
                             "given: add `rescore`, or remove rescore_activation")
        if self.rescore_kind != "auto" and self.rescore is None:
            raise ValueError(f"rescore_kind {self.rescore_kind} says what the `rescore` model is, and none is given: "
                             f"add `rescore`, or remove rescore_kind")
        return self

    def options(self) -> MiningOptions:
        """The mining rules alone (what `embedtrain mine` takes as options)."""
        return MiningOptions(**self.model_dump(include=set(MiningOptions.model_fields)))


class DatasetConfig(DataSource):
    loss: str | None = Field(None, description="name of the entry in `losses:` (may be omitted when there is only one)")
    weight: float = Field(1.0, gt=0, description="share of the batches, with training.multi_dataset_sampler: weighted")
    streaming: bool = Field(False, description="read the data lazily, for data that does not fit in memory (training "
                            "datasets; needs training.max_steps; rows are shuffled through a 10,000-row buffer)")
    prompts: str | dict[str, str] | None = Field(
        None, description="model prompt names to prepend while training: one for every input, or input -> name, "
        "e.g. {anchor: query, positive: document}; the prompts themselves are model.prompts, saved with the model")
    router_mapping: dict[str, str] | None = Field(
        None, description="route of each input of a model with a router (inference-free SPLADE): input or column -> "
        "route, e.g. {anchor: query, positive: document, negative: document}")
    mine: MineStep | None = Field(
        None, description="mine hard negatives for this data's (anchor, positive) pairs, or labelled pairs whose "
        "label-1 rows are the positives, before training (cached in output_dir/mined/); `columns:` then maps the "
        "pairs (anchor, positive, label), and the loss reads the mined rows")


class DatasetsConfig(StrictModel):
    train: dict[str, DatasetConfig] = Field(min_length=1, description="named training datasets")
    eval: dict[str, DatasetConfig] = Field(default_factory=dict, description="named datasets for evaluation loss")


class Recipe(StrictModel):
    model: ModelConfig
    losses: dict[str, LossConfig] = Field(min_length=1, description="named losses; datasets refer to them by name")
    datasets: DatasetsConfig
    evaluators: list[EvaluatorConfig] = Field(default_factory=list)
    training: TrainingConfig

    def loss_name_for(self, dataset: DatasetConfig) -> str:
        """The loss a dataset trains with (its `loss:`, or the only loss)."""
        return dataset.loss or next(iter(self.losses))

    def metric_names(self) -> list[str]:
        """Every metric an evaluation produces: evaluator metrics and one loss per eval dataset."""
        names = [name for evaluator in self.evaluators for name in metric_names(evaluator)]
        return names + [eval_loss_metric(name) for name in self.datasets.eval]

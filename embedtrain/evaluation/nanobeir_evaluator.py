"""NanoBEIR: retrieval on several small BEIR sets, per set and averaged.

Data comes from the hub (`sentence-transformers/NanoBEIR-en` or any dataset with the same corpus/queries/qrels
subsets and `Nano{Name}` splits, also a local copy of one), or from local BEIR folders: one folder, or a folder
of them, each named after its folder.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from embedtrain.errors import DataError
from embedtrain.evaluation.beir import (
    NANOBEIR_DATASETS,
    NANOBEIR_HUB_ID,
    RetrievalData,
    beir_folders,
    is_hub_dataset,
    load_beir_folder,
    load_beir_hub,
)
from embedtrain.evaluation.ir_evaluator import RetrievalOptions, evaluate_retrieval
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder

NanoBEIRName = Literal["climatefever", "dbpedia", "fever", "fiqa2018", "hotpotqa", "msmarco", "nfcorpus", "nq",
                       "quoraretrieval", "scidocs", "arguana", "scifact", "touche2020"]


class NanoBEIRParams(EvaluatorParams, RetrievalOptions):
    type: Literal["nanobeir"]
    name: str = Field("NanoBEIR", description="prefix of the aggregate metrics: {name}_{aggregate_key}_...")
    source: str = Field(NANOBEIR_HUB_ID, description="hub dataset id (or a local copy of one) with corpus/queries/"
                        "qrels subsets, or a local BEIR folder, or a folder of BEIR folders")
    split: str = Field("test", description="qrels/{split}.tsv of local BEIR folders (hub sets use Nano{Name})")
    dataset_names: list[NanoBEIRName] | None = Field(
        None, min_length=1, description="NanoBEIR subsets of a hub dataset (default: all 13)")
    aggregate_key: Literal["mean"] = "mean"
    query_prompts: str | dict[str, str] | None = Field(
        None, description="prefix for queries, for all sets or per set name (default: the model's `query` prompt)")
    corpus_prompts: str | dict[str, str] | None = Field(
        None, description="prefix for documents, for all sets or per set name (default: the model's `document` prompt)")

    @model_validator(mode="after")
    def _table_options_unused(self) -> "NanoBEIRParams":
        for key in ("columns", "ignore_columns", "subset", "shuffle_seed", "max_samples", "where"):
            if getattr(self, key):
                raise ValueError(f"`{key}` does not apply to NanoBEIR; remove it")
        return self


def dataset_sources(params: NanoBEIRParams, where: str) -> dict[str, Callable[[], RetrievalData]]:
    """{per-set metric prefix: loader of its data}, in evaluation order."""
    suffix = f"_{params.truncate_dim}" if params.truncate_dim else ""
    if not is_hub_dataset(params.source):
        if params.dataset_names is not None:
            raise DataError(f"{where}.dataset_names: applies to hub datasets only; {params.source!r} is a local "
                            f"folder, whose BEIR sub-folders are all evaluated")
        return {f"{folder.name}{suffix}": (lambda folder=folder: load_beir_folder(folder, params.split, where))
                for folder in beir_folders(Path(params.source).expanduser(), where)}
    names = params.dataset_names or list(NANOBEIR_DATASETS)
    return {f"Nano{NANOBEIR_DATASETS[name]}{suffix}":
            (lambda name=name: load_beir_hub(params.source, f"Nano{NANOBEIR_DATASETS[name]}", f"{where} ({name})"))
            for name in names}


@register_evaluator(NanoBEIRParams)
class NanoBEIREvaluator(Evaluator):
    """Retrieval metrics per set (`{set}_{fn}_ndcg@10`, ...) and their mean (`NanoBEIR_mean_{fn}_ndcg@10`, ...).

    Metric names are complete as returned: the per-set prefixes replace the usual `{name}_` prefix.
    """

    def __init__(self, params: NanoBEIRParams, sets: dict[str, tuple[str, RetrievalData]]) -> None:
        super().__init__(params, {})
        self.sets = sets  # prefix -> (set name for prompts, data)

    @classmethod
    def from_params(cls, params: NanoBEIRParams, where: str) -> "NanoBEIREvaluator":
        sets = {}
        for prefix, load in dataset_sources(params, where).items():
            set_name = prefix.removesuffix(f"_{params.truncate_dim}") if params.truncate_dim else prefix
            sets[prefix] = (_prompt_key(set_name), load())
        return cls(params, sets)

    @classmethod
    def aggregate_prefix(cls, params: NanoBEIRParams) -> str:
        prefix = f"{params.name}_{params.aggregate_key}"
        return f"{prefix}_{params.truncate_dim}" if params.truncate_dim else prefix

    @classmethod
    def metric_keys(cls, params: NanoBEIRParams) -> list[str]:
        prefixes = cls.set_prefixes(params)
        keys = params.retrieval_keys()
        return [f"{prefix}_{key}" for prefix in prefixes for key in keys] + \
            [f"{cls.aggregate_prefix(params)}_{key}" for key in keys]

    @classmethod
    def metric_names(cls, params: NanoBEIRParams) -> list[str]:
        return cls.metric_keys(params)

    @classmethod
    def primary_key(cls, params: NanoBEIRParams) -> str:
        return f"{cls.aggregate_prefix(params)}_{params.retrieval_primary_key()}"

    @property
    def primary_metric(self) -> str:
        return self.primary_key(self.params)

    @classmethod
    def set_prefixes(cls, params: NanoBEIRParams) -> list[str]:
        return list(dataset_sources(params, "evaluators"))

    def compute_set(self, model: SentenceEmbedder, prefix: str) -> dict[str, float]:
        """Retrieval metrics of one set, named `{prefix}_{key}`."""
        params = self.params
        set_name, data = self.sets[prefix]
        query_prompt = _prompt_for(params.query_prompts, set_name) or model.resolve_prompt("query")
        corpus_prompt = _prompt_for(params.corpus_prompts, set_name) or model.resolve_prompt("document")
        values = evaluate_retrieval(model, data, params, params.batch_size, params.truncate_dim,
                                    query_prompt, corpus_prompt, self.embed)
        return {f"{prefix}_{key}": value for key, value in values.items()}

    def aggregate(self, metrics: dict[str, float]) -> dict[str, float]:
        """The mean over sets of each retrieval metric, named `{aggregate prefix}_{key}`."""
        return {f"{self.aggregate_prefix(self.params)}_{key}":
                float(np.mean([metrics[f"{prefix}_{key}"] for prefix in self.sets]))
                for key in self.params.retrieval_keys()}

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for prefix in self.sets:
            metrics |= self.compute_set(model, prefix)
        return metrics | self.aggregate(metrics)

    def __call__(self, model: SentenceEmbedder) -> dict[str, float]:
        return self.compute(model)


def _prompt_key(prefix: str) -> str:
    """The name prompts are keyed by: the NanoBEIR subset name (`msmarco` for NanoMSMARCO), else the folder name."""
    human_to_name = {f"Nano{human}": name for name, human in NANOBEIR_DATASETS.items()}
    return human_to_name.get(prefix, prefix)


def _prompt_for(prompts: str | dict[str, str] | None, set_name: str) -> str | None:
    return prompts.get(set_name) if isinstance(prompts, dict) else prompts

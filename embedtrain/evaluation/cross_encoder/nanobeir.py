"""Reranking on retrieval sets (the reference's CrossEncoderNanoBEIREvaluator): for each query, the top `rerank_k`
candidates of a first stage are reranked; MAP, MRR@k and nDCG@k per set and averaged, with those of the first
stage's own order (`base_*`).

The sets are NanoBEIR's hub subsets (`sentence-transformers/NanoBEIR-en` or any dataset with the same corpus,
queries, qrels and bm25 subsets and `Nano{Name}` splits, also a local copy of one), whose candidates are the bm25
subset's, or local BEIR folders (one, or a folder of them, each named after its folder), whose candidates come from
a `first_stage` embedding model or, for one folder, a `candidates` file. A `first_stage` model also replaces a hub
dataset's bm25 candidates.
"""

from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from embedtrain.errors import DataError, ModelLoadError
from embedtrain.evaluation.beir import (
    NANOBEIR_DATASETS,
    NANOBEIR_HUB_ID,
    RetrievalData,
    beir_folders,
    is_hub_dataset,
    load_beir_folder,
    load_beir_hub,
)
from embedtrain.evaluation.cross_encoder.candidates import (
    Candidates,
    file_candidates,
    first_stage_candidates,
    hub_candidates,
    reranking_samples,
)
from embedtrain.evaluation.cross_encoder.reranking import RerankingSample, ranking_keys, rerank_metrics
from embedtrain.evaluation.cross_encoder.scoring import CrossEncoderEvaluator, CrossEncoderParams, PairScorer
from embedtrain.evaluation.nanobeir_evaluator import NanoBEIRName
from embedtrain.evaluation.registry import register_evaluator
from embedtrain.models.io import load_model, resolve_model_path

ARGUMENT_RETRIEVAL = ("arguana", "touche2020")
"""Left out by default, as the reference leaves them out: their task (find counter-arguments) is not reranking
relevant passages."""


class CrossEncoderNanoBEIRParams(CrossEncoderParams):
    type: Literal["cross_encoder_nanobeir"]
    name: str = Field("NanoBEIR", description="prefix of the aggregate metrics: {name}_R{rerank_k}_{aggregate_key}_...")
    source: str = Field(NANOBEIR_HUB_ID, description="hub dataset id (or a local copy of one) with corpus/queries/"
                        "qrels/bm25 subsets, or a local BEIR folder, or a folder of BEIR folders")
    split: str = Field("test", description="qrels/{split}.tsv of local BEIR folders (hub sets use Nano{Name})")
    dataset_names: list[NanoBEIRName] | None = Field(
        None, min_length=1, description="NanoBEIR subsets of a hub dataset (default: all but arguana and touche2020)")
    rerank_k: int = Field(100, gt=0, description="candidates reranked per query: the first stage's top rerank_k")
    at_k: int = Field(10, gt=0, description="cut-off of MRR and nDCG")
    always_rerank_positives: bool = Field(
        True, description="rerank the relevant documents the first stage missed too (True: a perfect reranker scores "
        "1), or only its candidates (False, as a real pipeline would)")
    aggregate_key: Literal["mean"] = "mean"
    first_stage: str | None = Field(
        None, description="an embedding model (local folder or hub id; dense or sparse) whose top rerank_k documents "
        "per query, by its own similarity, are the candidates")
    candidates: str | None = Field(
        None, description='for one local BEIR folder: a jsonl file of candidates, {"query-id": ..., "corpus-ids": '
        "[best first, ...]} per line (the layout of NanoBEIR's bm25 subset)")

    @model_validator(mode="after")
    def _one_candidate_source(self) -> "CrossEncoderNanoBEIRParams":
        for key in ("columns", "ignore_columns", "subset", "shuffle_seed", "max_samples", "where"):
            if getattr(self, key):
                raise ValueError(f"`{key}` does not apply to NanoBEIR reranking; remove it")
        if self.first_stage is not None and self.candidates is not None:
            raise ValueError("`first_stage` and `candidates` both name the candidates; keep one")
        return self

    def prefix(self) -> str:
        return f"{self.name}_R{self.rerank_k}_{self.aggregate_key}"


def set_names(params: CrossEncoderNanoBEIRParams, where: str) -> list[str]:
    """The sets, in evaluation order: `Nano{Name}` for hub subsets, the folder name for BEIR folders."""
    if is_hub_dataset(params.source):
        names = params.dataset_names or [name for name in NANOBEIR_DATASETS if name not in ARGUMENT_RETRIEVAL]
        return [f"Nano{NANOBEIR_DATASETS[name]}" for name in names]
    return [folder.name for folder in beir_folders(Path(params.source).expanduser(), where)]


def load_sets(params: CrossEncoderNanoBEIRParams, where: str) -> dict[str, tuple[RetrievalData, Candidates | None]]:
    """{set name: (its data, its candidates)}; candidates None when the first stage ranks them at the first
    evaluation (so that checking data never runs a model)."""
    if is_hub_dataset(params.source):
        if params.candidates is not None:
            raise DataError(f"{where}.candidates: applies to a local BEIR folder; {params.source!r} is a hub dataset, "
                            f"whose bm25 subset holds its candidates (or name a first_stage model)")
        sets = {}
        for name in set_names(params, where):
            data = load_beir_hub(params.source, name, f"{where} ({name})", drop_empty=False)
            candidates = None if params.first_stage else hub_candidates(params.source, name, data, f"{where} ({name})")
            sets[name] = (data, candidates)
        return sets
    if params.dataset_names is not None:
        raise DataError(f"{where}.dataset_names: applies to hub datasets only; {params.source!r} is a local folder, "
                        f"whose BEIR sub-folders are all evaluated")
    folders = beir_folders(Path(params.source).expanduser(), where)
    if params.first_stage is None and params.candidates is None:
        raise DataError(f"{where}: {params.source!r} is a local BEIR folder (or a folder of them), which brings no "
                        f"candidates to rerank: name a first_stage model (e.g. `first_stage: sentence-transformers/"
                        f"all-MiniLM-L6-v2`, whose top rerank_k documents per query are reranked) or a `candidates` file")
    if params.candidates is not None and len(folders) > 1:
        raise DataError(f"{where}.candidates: one file ranks one BEIR folder, and {params.source!r} holds "
                        f"{len(folders)}; give each folder its own evaluator, or name a first_stage model")
    sets = {}
    for folder in folders:
        data = load_beir_folder(folder, params.split, where)
        candidates = file_candidates(Path(params.candidates).expanduser(), data, where) if params.candidates else None
        sets[folder.name] = (data, candidates)
    return sets


@register_evaluator(CrossEncoderNanoBEIRParams)
class CrossEncoderNanoBEIREvaluator(CrossEncoderEvaluator):
    """Per set `{set}_R{rerank_k}_{map, mrr@k, ndcg@k, base_map, base_mrr@k, base_ndcg@k}`, and their means
    `{name}_R{rerank_k}_mean_...`. Metric names are complete as returned: the set prefixes replace `{name}_`."""

    same_task_as = "nanobeir"

    def __init__(self, params: CrossEncoderNanoBEIRParams, sets: dict[str, tuple[RetrievalData, Candidates | None]],
                 where: str) -> None:
        super().__init__(params, {})
        self.sets, self.where = sets, where
        self.samples: dict[str, list[RerankingSample]] = {
            name: reranking_samples(data, candidates, params.rerank_k, f"{where} ({name})")
            for name, (data, candidates) in sets.items() if candidates is not None}

    @classmethod
    def from_params(cls, params: CrossEncoderNanoBEIRParams, where: str) -> "CrossEncoderNanoBEIREvaluator":
        if params.first_stage is not None:
            try:  # a missing model is found now; it is loaded, and ranks, at the first evaluation
                resolve_model_path(params.first_stage)
            except ModelLoadError as error:
                raise ModelLoadError(f"{where}.first_stage: {error}") from error
        return cls(params, load_sets(params, where), where)

    @classmethod
    def set_prefix(cls, params: CrossEncoderNanoBEIRParams, set_name: str) -> str:
        return f"{set_name}_R{params.rerank_k}"

    @classmethod
    def metric_keys(cls, params: CrossEncoderNanoBEIRParams) -> list[str]:
        keys = ranking_keys(params.at_k, True)
        prefixes = [cls.set_prefix(params, name) for name in set_names(params, "evaluators")] + [params.prefix()]
        return [f"{prefix}_{key}" for prefix in prefixes for key in keys]

    @classmethod
    def metric_names(cls, params: CrossEncoderNanoBEIRParams) -> list[str]:
        return cls.metric_keys(params)

    @classmethod
    def primary_key(cls, params: CrossEncoderNanoBEIRParams) -> str:
        return f"{params.prefix()}_ndcg@{params.at_k}"

    @property
    def primary_metric(self) -> str:
        return self.primary_key(self.params)

    def rank_with_first_stage(self) -> None:
        """Rank every set with the first-stage model, once; the model is released afterwards."""
        params = self.params
        first_stage = load_model(params.first_stage).to("cuda" if torch.cuda.is_available() else "cpu")
        for name, (data, _) in self.sets.items():
            candidates = first_stage_candidates(first_stage, data, params.rerank_k, params.batch_size)
            self.samples[name] = reranking_samples(data, candidates, params.rerank_k, f"{self.where} ({name})")

    def compute(self, model: PairScorer) -> dict[str, float]:
        params = self.params
        if len(self.samples) < len(self.sets):
            self.rank_with_first_stage()
        metrics: dict[str, float] = {}
        for name in self.sets:
            values = rerank_metrics(partial(self.relevance_scores, model), self.samples[name], True, params.at_k,
                                    params.always_rerank_positives)
            metrics |= {f"{self.set_prefix(params, name)}_{key}": value for key, value in values.items()}
        keys = ranking_keys(params.at_k, True)
        return metrics | {f"{params.prefix()}_{key}": float(np.mean([metrics[f"{self.set_prefix(params, name)}_{key}"]
                                                                      for name in self.sets])) for key in keys}

    def __call__(self, model: PairScorer) -> dict[str, float]:
        return self.compute(model)

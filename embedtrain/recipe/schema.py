"""The recipe schema. Every section is strict (unknown keys are errors) and frozen once loaded.

Loss and evaluator entries are discriminated unions built from their registries, so adding a loss
or an evaluator adds it to the schema (and to its JSON schema) with no change here.
"""

import re
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from embedtrain.config import StrictModel
from embedtrain.data.samplers import BatchSamplerName, MultiDatasetSamplerName
from embedtrain.data.source import DataSource
from embedtrain.errors import did_you_mean
from embedtrain.evaluation import EVALUATORS, metric_names
from embedtrain.losses import loss_config_union
from embedtrain.losses.sparse.model_kind import model_kind_problems
from embedtrain.modules.dense import Activation
from embedtrain.modules.pooling import PoolingMode

LossConfig = loss_config_union()
# Union[...] of a tuple built at import time: the `X | Y` syntax cannot express a registry-sized union.
EvaluatorConfig = Annotated[Union[tuple(s.params_model for s in EVALUATORS.values())], Field(discriminator="type")]  # noqa: UP007


class DenseConfig(StrictModel):
    out_features: int = Field(gt=0, description="output dimension")
    bias: bool = True
    activation: Activation = "tanh"


class StaticConfig(StrictModel):
    """Replace the transformer by a StaticEmbedding (mean of per-token vectors) with `base`'s tokenizer."""

    embedding_dim: int | None = Field(
        None, gt=0, description="random vectors of this size; omit to start from the base model's input token embeddings")


class AutoEncoderConfig(StrictModel):
    """CSR's sparse autoencoder on top of the dense embedding (the reference's defaults for a new CSR model)."""

    hidden_dim: int | None = Field(None, gt=0, description="latent dimensions (default 4 x the dense dimension)")
    k: int | None = Field(None, gt=0, description="active latents per text, also the default max_active_dims "
                          "(default 256; dim / 4 on a dense sentence-transformers model)")
    k_aux: int | None = Field(None, gt=0, description="dead latents used by the auxiliary reconstruction loss "
                              "(default 512; dim / 2 on a dense sentence-transformers model)")
    normalize: bool = Field(False, description="layer-normalise the dense embedding before encoding it")
    dead_threshold: int = Field(30, gt=0, description="training steps without firing after which a latent is dead")


class QueryEncoderConfig(StrictModel):
    """The static query side of inference-free SPLADE: one weight per vocabulary id."""

    idf: str | None = Field(None, description="JSON file {token: weight} to start from (e.g. IDF values); default all ones")
    frozen: bool = Field(False, description="keep the query weights fixed while training")


class SparseConfig(StrictModel):
    """Options of a new sparse model (`kind: sparse`); an existing sparse model keeps its own modules."""

    pooling_strategy: Literal["max", "sum"] = Field("max", description="SPLADE pooling over tokens")
    activation_function: Literal["relu", "log1p_relu"] = Field(
        "relu", description="SPLADE activation: log1p(relu(x)), or log1p applied twice (log1p_relu, OpenSearch)")
    query_encoder: QueryEncoderConfig = Field(default_factory=QueryEncoderConfig)
    autoencoder: AutoEncoderConfig = Field(default_factory=AutoEncoderConfig)


class CardConfig(StrictModel):
    """Metadata for the model card (README.md) of the saved model."""

    model_name: str | None = None
    language: list[str] = Field(default_factory=list)
    license: str | None = None
    tags: list[str] = Field(default_factory=list)


Architecture = Literal["splade", "inference_free_splade", "csr"]


class ModelConfig(StrictModel):
    base: str = Field(description="hub id or local directory: a sentence-transformers model or a plain Hugging Face checkpoint")
    revision: str | None = None
    kind: Literal["dense", "sparse"] = Field("dense", description="dense embeddings, or sparse ones (SPLADE, CSR)")
    architecture: Architecture | None = Field(
        None, description="sparse only: splade (MLM + SPLADE pooling), inference_free_splade (static query weights, "
        "SPLADE documents) or csr (sparse autoencoder on a dense encoder); default: that of a sparse base model, "
        "else splade for a masked-LM checkpoint and csr for any other")
    sparse: SparseConfig | None = Field(None, description="options of a new sparse model (with kind: sparse)")
    max_active_dims: int | None = Field(None, gt=0, description="sparse only, saved with the model: encode keeps at "
                                                                "most this many non-zero dimensions per text")
    pooling: PoolingMode | list[PoolingMode] | None = Field(
        None, description="pooling for a plain checkpoint (default mean); a sentence-transformers model keeps its own")
    dense: DenseConfig | None = Field(None, description="a Dense layer after pooling, for a plain checkpoint")
    static: StaticConfig | None = Field(
        None, description="train a static embedding model (StaticEmbedding) with base's tokenizer instead of base itself")
    normalize: bool | None = Field(None, description="L2-normalise embeddings (adds or removes the Normalize module)")
    max_seq_length: int | None = Field(None, gt=0, description="truncate texts to this many tokens")
    prompts: dict[str, str] = Field(default_factory=dict, description="named prompts saved with the model, e.g. {query: 'query: '}")
    default_prompt_name: str | None = None
    include_prompt: bool | None = Field(None, description="false: prompt tokens take no part in pooling")
    similarity_fn_name: Literal["cosine", "dot", "euclidean", "manhattan"] | None = None
    truncate_dim: int | None = Field(None, gt=0, description="saved with the model: encode keeps the first truncate_dim "
                                                             "dimensions (for Matryoshka-trained models)")
    trust_remote_code: bool = False
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] | None = None
    card: CardConfig = Field(default_factory=CardConfig)

    @model_validator(mode="after")
    def _default_prompt_is_defined(self) -> "ModelConfig":
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {self.default_prompt_name!r} is not a key of prompts")
        return self

    @model_validator(mode="after")
    def _kind_fits_the_keys(self) -> "ModelConfig":
        sparse_keys = [key for key in ("architecture", "sparse", "max_active_dims") if getattr(self, key) is not None]
        if self.kind == "dense" and sparse_keys:
            raise ValueError(f"{', '.join(sparse_keys)}: sparse-model keys; add `kind: sparse` or remove them")
        dense_keys = [key for key in ("pooling", "dense", "static", "truncate_dim", "include_prompt")
                      if getattr(self, key) is not None]
        if self.kind == "sparse" and dense_keys:
            raise ValueError(f"{', '.join(dense_keys)}: dense-model keys, which a sparse model (kind: sparse) does not "
                             f"use; remove them")
        return self


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


class DatasetsConfig(StrictModel):
    train: dict[str, DatasetConfig] = Field(min_length=1, description="named training datasets")
    eval: dict[str, DatasetConfig] = Field(default_factory=dict, description="named datasets for evaluation loss")


class TrainingConfig(StrictModel):
    output_dir: str = Field(description="checkpoints, metrics.jsonl, the resolved recipe and final/ go here")
    epochs: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps (overrides epochs)")
    batch_size: int = Field(16, gt=0, description="rows per batch on each process")
    gradient_accumulation_steps: int = Field(1, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    learning_rate_mapping: dict[str, float] = Field(
        default_factory=dict, description="regex -> learning rate for the model parameters whose name it matches "
        "(re.search; first matching pattern wins), e.g. {'SparseStaticEmbedding\\.weight': 1e-3}; "
        "`embedtrain list modules RECIPE` lists the names")
    weight_decay: float = Field(0.0, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = Field(1e-8, gt=0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="share of the optimizer steps spent warming up")
    warmup_steps: int | None = Field(None, ge=0, description="warm-up in optimizer steps (instead of warmup_ratio)")
    max_grad_norm: float | None = Field(1.0, gt=0, description="clip gradients to this norm; null disables clipping")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="auto: bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU")
    seed: int = 42
    logging_steps: int = Field(10, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="evaluate every N steps (always before and after training)")
    eval_before_training: bool = True
    save_steps: int | None = Field(None, gt=0, description="write a checkpoint every N steps (and at the end)")
    save_total_limit: int | None = Field(None, gt=0, description="keep only the newest N checkpoints (and the best)")
    metric_for_best_model: str | None = Field(None, description="metric that picks the best checkpoint, e.g. sts-dev_spearman_cosine")
    load_best_model_at_end: bool = Field(False, description="save the best checkpoint's model as final/")
    batch_sampler: BatchSamplerName = Field(
        "random", description="random; no_duplicates (no text twice in a batch: no false in-batch negatives); "
        "group_by_label (pairs of rows with the same label, for batch-triplet losses)")
    multi_dataset_sampler: MultiDatasetSamplerName = Field(
        "proportional", description="how batches of several datasets interleave: proportional (every batch once), "
        "round_robin (one of each in turn), weighted (by each dataset's weight)")
    dataloader_drop_last: bool = False
    dataloader_num_workers: int = Field(0, ge=0)
    length_chunking: bool = Field(
        True, description="run each batch through the encoder in length-homogeneous chunks: the same loss and "
        "gradients with far less padding (the batches themselves are unchanged)")

    @model_validator(mode="after")
    def _patterns_compile(self) -> "TrainingConfig":
        for pattern, rate in self.learning_rate_mapping.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"learning_rate_mapping: {pattern!r} is not a regular expression ({error})") from None
            if rate <= 0:
                raise ValueError(f"learning_rate_mapping: {pattern!r} -> {rate}: a learning rate must be > 0")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingConfig":
        if self.warmup_steps is not None and self.warmup_ratio:
            raise ValueError("set warmup_ratio or warmup_steps, not both")
        if self.batch_sampler == "group_by_label" and self.batch_size % 2:
            raise ValueError(f"batch_sampler group_by_label puts rows in pairs: batch_size must be even, not {self.batch_size}")
        if self.load_best_model_at_end and not self.metric_for_best_model:
            raise ValueError("load_best_model_at_end needs metric_for_best_model")
        if self.load_best_model_at_end and self.save_steps and (not self.eval_steps or self.save_steps % self.eval_steps):
            raise ValueError("load_best_model_at_end: save_steps must be a multiple of eval_steps, so that every "
                             "checkpoint has been evaluated")
        return self


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
        return names + [f"eval_{name}_loss" for name in self.datasets.eval]

    def _streaming_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        problems = [(("datasets", "eval", name, "streaming"), "evaluation data is read whole; remove `streaming`")
                    for name, dataset in self.datasets.eval.items() if dataset.streaming]
        streamed = [name for name, dataset in self.datasets.train.items() if dataset.streaming]
        if not streamed:
            return problems
        where = ("datasets", "train", streamed[0], "streaming")
        if len(self.datasets.train) > 1:
            problems.append((where, "a streamed dataset must be the only training dataset"))
        if self.training.max_steps is None:
            problems.append((where, "a stream has no known length: set training.max_steps"))
        if self.training.batch_sampler != "random":
            problems.append((where, f"training.batch_sampler {self.training.batch_sampler} needs random access; "
                                    f"a stream is read in order (through a shuffle buffer)"))
        return problems

    def _prompt_problems(self, split: str, name: str, dataset: DatasetConfig) -> list[tuple[tuple[str | int, ...], str]]:
        prompts = dataset.prompts
        names = [prompts] if isinstance(prompts, str) else list((prompts or {}).values())
        undefined = [prompt for prompt in names if prompt not in self.model.prompts]
        if not undefined:
            return []
        return [(("datasets", split, name, "prompts"),
                 f"{undefined} not defined in model.prompts ({', '.join(self.model.prompts) or 'none'}); define the "
                 f"prompt texts there, so that they are saved with the model{did_you_mean(undefined[0], list(self.model.prompts))}")]

    def _router_problems(self, split: str, name: str, dataset: DatasetConfig) -> list[tuple[tuple[str | int, ...], str]]:
        model = self.model
        where = ("datasets", split, name, "router_mapping")
        if dataset.router_mapping is None:
            if split == "train" and model.architecture == "inference_free_splade":
                return [(("datasets", split, name), "inference-free SPLADE routes queries and documents through "
                         "different modules: add router_mapping, e.g. {anchor: query, positive: document}")]
            return []
        if model.kind != "sparse" or model.architecture in ("splade", "csr"):
            return [(where, "only a model with a router (model.kind: sparse, architecture: inference_free_splade) "
                            "routes its inputs; remove router_mapping")]
        unknown = sorted(set(dataset.router_mapping.values()) - {"query", "document"})
        if model.architecture == "inference_free_splade" and unknown:
            return [(where, f"routes {unknown} do not exist; inference-free SPLADE has the routes query and document")]
        return []

    def cross_reference_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems between sections (names that refer to other sections), as (key path, message).

        Checked after the field-level validation, so each problem can be reported at its own YAML line.
        """
        problems = []
        for split, entries in (("train", self.datasets.train), ("eval", self.datasets.eval)):
            for name, dataset in entries.items():
                if dataset.loss is None and len(self.losses) > 1:
                    problems.append((("datasets", split, name),
                                     f"`loss:` is required when several losses are defined ({', '.join(self.losses)})"))
                elif dataset.loss is not None and dataset.loss not in self.losses:
                    problems.append((("datasets", split, name, "loss"),
                                     f"{dataset.loss!r} is not defined in losses ({', '.join(self.losses)})"
                                     f"{did_you_mean(dataset.loss, list(self.losses))}"))
                problems += self._prompt_problems(split, name, dataset)
                problems += self._router_problems(split, name, dataset)
        problems += self._streaming_problems()
        # model.kind (dense or sparse) comes with the sparse models; a model without it is dense.
        problems += model_kind_problems(self.losses, getattr(self.model, "kind", "dense"))
        names = [evaluator.name for evaluator in self.evaluators]
        for index, name in enumerate(names):
            if names.index(name) != index:
                problems.append((("evaluators", index, "name"), f"{name!r} is already the name of evaluators[{names.index(name)}]"))
        metric = self.training.metric_for_best_model
        if metric is not None and metric not in (available := self.metric_names()):
            problems.append((("training", "metric_for_best_model"),
                             f"{metric!r} is not produced by the evaluators or eval datasets"
                             f"{did_you_mean(metric, available)}; available: {available}"))
        return problems

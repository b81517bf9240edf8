"""The `model:` section of a recipe: what the model builders (build.py, build_sparse.py, cross_encoder_build.py) consume.

Strict (unknown keys are errors) and frozen, like every recipe section; the recipe schema composes it.
"""

from typing import Literal

import torch
from pydantic import Field, StrictBool, model_validator

from embedtrain.config import StrictModel
from embedtrain.modules.dense import Activation
from embedtrain.modules.lora import INSTALL_HINT, peft_available
from embedtrain.modules.pooling import PoolingMode


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


class CrossEncoderConfig(StrictModel):
    """Options of a cross-encoder (`kind: cross_encoder`): a classification head over each (text, text) pair."""

    num_labels: int | None = Field(
        None, gt=0, description="outputs per pair: 1 for a relevance score, n for n classes; default: that of the base "
        "model's trained classification head, else 1 (a new head)")
    activation: Activation | None = Field(
        None, description="applied to the logits when predicting (losses see raw logits), saved with the model; "
        "default sigmoid for 1 label, identity otherwise")


class LoraConfig(StrictModel):
    """Train a LoRA adapter (low-rank updates of chosen linear layers) instead of the transformer's own weights,
    which stay frozen; needs peft (`pip install 'embedtrain[lora]'`). Layers after the transformer (a new Dense)
    still train in full."""

    r: int = Field(8, gt=0, description="rank of the low-rank update")
    alpha: float = Field(8.0, gt=0, description="scaling: the update is multiplied by alpha / r")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None, min_length=1, description="names (or name suffixes) of the linear layers to adapt, e.g. [query, key, "
        "value, dense]; all-linear: every linear layer; default: peft's choice for the architecture (BERT: query, "
        "value)")
    merge: bool = Field(False, description="save the final model with the adapter merged into full weights (a plain "
                                           "model, no peft needed to load it); checkpoints always hold the adapter")

    @model_validator(mode="after")
    def _peft_is_installed(self) -> "LoraConfig":
        if not peft_available():
            raise ValueError(f"LoRA needs the peft package, which is not installed; {INSTALL_HINT}")
        return self


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
    kind: Literal["dense", "sparse", "cross_encoder"] = Field(
        "dense", description="dense embeddings, sparse ones (SPLADE, CSR), or a cross-encoder (a reranker scoring "
        "text pairs)")
    architecture: Architecture | None = Field(
        None, description="sparse only: splade (MLM + SPLADE pooling), inference_free_splade (static query weights, "
        "SPLADE documents) or csr (sparse autoencoder on a dense encoder); default: that of a sparse base model, "
        "else splade for a masked-LM checkpoint and csr for any other")
    sparse: SparseConfig | None = Field(None, description="options of a new sparse model (with kind: sparse)")
    cross_encoder: CrossEncoderConfig | None = Field(
        None, description="options of a cross-encoder (with kind: cross_encoder): number of labels, activation")
    max_active_dims: int | None = Field(None, gt=0, description="sparse only, saved with the model: encode keeps at "
                                                                "most this many non-zero dimensions per text")
    pooling: PoolingMode | list[PoolingMode] | None = Field(
        None, description="pooling for a plain checkpoint (default mean); a sentence-transformers model keeps its own")
    dense: DenseConfig | None = Field(None, description="a Dense layer after pooling, for a plain checkpoint")
    static: StaticConfig | None = Field(
        None, description="train a static embedding model (StaticEmbedding) with base's tokenizer instead of base itself")
    normalize: bool | None = Field(None, description="L2-normalise embeddings (adds or removes the Normalize module)")
    max_seq_length: int | None = Field(None, gt=0, description="truncate texts to this many tokens (a cross-encoder: "
                                                              "each pair of texts together)")
    prompts: dict[str, str] = Field(default_factory=dict, description="named prompts saved with the model, e.g. {query: 'query: '}")
    default_prompt_name: str | None = None
    include_prompt: bool | None = Field(None, description="false: prompt tokens take no part in pooling")
    similarity_fn_name: Literal["cosine", "dot", "euclidean", "manhattan"] | None = None
    truncate_dim: int | None = Field(None, gt=0, description="saved with the model: encode keeps the first truncate_dim "
                                                             "dimensions (for Matryoshka-trained models)")
    # Strict: only a YAML boolean runs a model's own code, not a string such as "no" that lax parsing would accept.
    trust_remote_code: StrictBool = Field(False, description="run the Python code a model ships (only for code you "
                                                             "have read and trust)")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] | None = None
    lora: LoraConfig | None = Field(None, description="dense only: train a LoRA adapter instead of the transformer's "
                                                      "weights (see LoraConfig)")
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="the transformer's weights while training. float32: the weights that train are kept "
        "in full precision whatever the checkpoint's dtype (training.precision picks the compute dtype); bfloat16, "
        "with model.lora and training.precision: bf16: the frozen base weights are held in bf16 (half their memory, "
        "no per-step casts) while the adapter and any new layer train in float32")
    card: CardConfig = Field(default_factory=CardConfig)

    @property
    def weights_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    @model_validator(mode="after")
    def _default_prompt_is_defined(self) -> "ModelConfig":
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {self.default_prompt_name!r} is not a key of prompts")
        return self

    @model_validator(mode="after")
    def _kind_fits_the_keys(self) -> "ModelConfig":
        """Keys of another kind of model are refused, not ignored."""
        def given(keys: tuple[str, ...]) -> str:
            return ", ".join(key for key in keys if getattr(self, key) is not None)

        if self.kind != "cross_encoder" and self.cross_encoder is not None:
            raise ValueError("cross_encoder: options of a cross-encoder; add `kind: cross_encoder` or remove them")
        if self.kind == "dense" and (keys := given(SPARSE_KEYS)):
            raise ValueError(f"{keys}: sparse-model keys; add `kind: sparse` or remove them")
        if self.kind == "sparse" and (keys := given(DENSE_KEYS)):
            raise ValueError(f"{keys}: dense-model keys, which a sparse model (kind: sparse) does not use; remove them")
        if self.kind == "cross_encoder" and (keys := given(DENSE_KEYS + SPARSE_KEYS + EMBEDDING_KEYS)):
            raise ValueError(f"{keys}: embedding-model keys, which a cross-encoder (kind: cross_encoder) does not use "
                             f"(it scores text pairs, it embeds no text); remove them")
        return self

    @model_validator(mode="after")
    def _lora_fits_the_model(self) -> "ModelConfig":
        if self.lora is None:
            return self
        if self.kind != "dense":
            raise ValueError(f"lora: LoRA adapters are supported for dense models (kind: dense) only, not kind: "
                             f"{self.kind}; remove model.lora to train all the weights")
        if self.static is not None:
            raise ValueError("lora: a static model (model.static) has no transformer to adapt; remove one of them")
        return self

    @model_validator(mode="after")
    def _low_precision_weights_are_frozen(self) -> "ModelConfig":
        # Only a LoRA run has frozen weights to store in bf16; whether a dense model has an adapter (model.lora, or
        # a base that is an adapter model) is known once it is built (build.py).
        if self.dtype != "float32" and (self.kind != "dense" or self.static is not None):
            raise ValueError(f"dtype: {self.dtype} is for the frozen base of a LoRA run (a dense model's adapter); "
                             f"{BF16_TRAINING_HINT}")
        return self


BF16_TRAINING_HINT = ("weights that train would be kept in bf16, where small optimizer updates round away: keep "
                      "dtype: float32 and set training.precision: bf16 (bf16 compute over float32 weights)")
SPARSE_KEYS = ("architecture", "sparse", "max_active_dims")
DENSE_KEYS = ("pooling", "dense", "static", "truncate_dim", "include_prompt")
EMBEDDING_KEYS = ("normalize", "similarity_fn_name")
"""Keys of both embedding kinds (dense and sparse), which a cross-encoder has no use for."""

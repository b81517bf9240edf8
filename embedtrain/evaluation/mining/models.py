"""Loading the models mining and scoring use (`mine`, `score`, a recipe's `mine:` step): an embedding model (dense or
sparse) or a scorer of pairs.

A cross-encoder (a reranker) is recognised from its folder before anything loads (`model_form`, as `embedtrain eval`
recognises it): a saved cross-encoder (either reference layout), or a plain `*ForSequenceClassification` checkpoint.
It scores pairs (its predictions, activation applied) but cannot embed texts, so a mining model refuses it. `option`
names where the model was given (`--model`, `datasets.train.x.mine.model`) in the errors.
"""

from pathlib import Path
from typing import Literal

import torch

from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.scoring import BiEncoderScorer, PairScorer
from embedtrain.models.build_sparse import build_sparse_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.cross_encoder_io import load_cross_encoder
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.form import model_form
from embedtrain.models.io import load_model, resolve_model_path
from embedtrain.modules.dense import Activation

Kind = Literal["dense", "sparse"]


def is_cross_encoder(path: Path) -> bool:
    form = model_form(str(path))
    return form.saved_kind == "cross_encoder" or form.classifier


def load_embedder(name_or_path: str, kind: Kind | None, option: str = "--model", kind_option: str = "--kind",
                  rescore_option: str = "--rescore") -> SentenceEmbedder:
    """The embedding model at `name_or_path`, on the GPU when there is one: a saved model keeps its kind; a plain
    checkpoint loads dense (mean pooling), or, with kind sparse, as the reference's SparseEncoder builds it (SPLADE
    for a masked-LM checkpoint, else CSR). RecipeError (exit 2) for a cross-encoder or a conflicting kind."""
    path = resolve_model_path(name_or_path)
    if is_cross_encoder(path):
        raise RecipeError(f"{option} {name_or_path}: a cross-encoder (a reranker) scores pairs but cannot embed texts; "
                          f"give an embedding model, and the cross-encoder to {rescore_option}")
    form = model_form(str(path))
    if kind == "dense" and form.saved_kind == "sparse":
        raise RecipeError(f"{kind_option} dense: {name_or_path} is a saved sparse model (SparseEncoder), which keeps "
                          f"its kind; remove {kind_option}")
    chosen = kind or form.saved_kind or "dense"
    model = (build_sparse_model(ModelConfig(base=str(path), kind="sparse"))
             if chosen == "sparse" and form.saved_kind != "sparse" else load_model(path))
    return model.to("cuda") if torch.cuda.is_available() else model


def scorer_activation(scorer: PairScorer | None) -> str | None:
    """The activation a cross-encoder scorer applies to its logits; None for an embedding model (or no scorer)."""
    return scorer.activation_name if isinstance(scorer, CrossEncoder) else None


def load_scorer(name_or_path: str, kind: Kind | None, option: str, kind_option: str = "--kind",
                activation: Activation | None = None, activation_option: str = "--activation",
                **bi_encoder_options) -> PairScorer:
    """A scorer of (query, text) pairs: a cross-encoder (on the GPU when there is one) with its own activation, or
    `activation` in its place (identity: its logits, e.g. for dot-product students); any embedding model as a
    `BiEncoderScorer` (its similarity of the two embeddings; `bi_encoder_options` are BiEncoderScorer's).
    RecipeError (exit 2) for a cross-encoder that gives class logits rather than one score per pair, or an
    activation given for an embedding model."""
    path = resolve_model_path(name_or_path)
    if not is_cross_encoder(path):
        if activation is not None:
            raise RecipeError(f"{activation_option} {activation}: {option} {name_or_path} is an embedding model, whose "
                              f"scores are similarities; an activation applies to a cross-encoder's logits only. "
                              f"Remove {activation_option}")
        return BiEncoderScorer(load_embedder(name_or_path, kind, option, kind_option), **bi_encoder_options)
    if kind is not None:
        raise RecipeError(f"{kind_option} {kind}: {option} {name_or_path} is a cross-encoder (a reranker), which keeps "
                          f"its kind; remove {kind_option}")
    scorer: CrossEncoder = load_cross_encoder(path, activation=activation)
    if scorer.num_labels != 1:
        raise RecipeError(f"{option} {name_or_path}: a cross-encoder with {scorer.num_labels} labels gives a logit per "
                          f"class, not one score per pair; give a reranker (one label) or an embedding model")
    return scorer.to("cuda") if torch.cuda.is_available() else scorer

"""Loading the models mining and scoring use (`mine`, `score`, a recipe's `mine:` step): an embedding model (dense or
sparse) or a scorer of pairs.

A cross-encoder (a reranker) is recognised from its folder before anything loads (`model_form`, as `embedtrain eval`
recognises it): a saved cross-encoder (either reference layout), or a plain `*ForSequenceClassification` checkpoint.
It scores pairs (its predictions, activation applied) but cannot embed texts, so a mining model refuses it. `option`
names where the model was given (`--model`, `datasets.train.x.mine.model`) in the errors.

A re-scoring model (`--rescore`, `mine: rescore`) is any scorer of pairs, and its kind (`--rescore-kind`) is what its
folder says unless said outright. A plain checkpoint says nothing: re-scoring with it as a cross-encoder would read
a new, untrained classification head (random scores), and as an embedding model is rarely what was meant of a
re-scorer, so it needs its kind said (dense or sparse), and cross_encoder needs a trained head.
"""

import logging
from pathlib import Path
from typing import Literal

import torch

from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.options import RescoreKind
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

logger = logging.getLogger(__name__)


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
    if kind is None and form.saved_kind is None:
        # As sentence-transformers does for such a folder; say so, for a checkpoint never trained to embed (a
        # masked-LM or base model) gives scores and neighbours that mean little.
        logger.warning("%s %s is a plain checkpoint (no modules.json): it embeds with mean pooling as a dense model. "
                       "If it was not trained for sentence similarity, give a sentence-embedding model; pass %s dense "
                       "to say this is intended", option, name_or_path, kind_option)
    chosen = kind or form.saved_kind or "dense"
    model = (build_sparse_model(ModelConfig(base=str(path), kind="sparse"))
             if chosen == "sparse" and form.saved_kind != "sparse" else load_model(path))
    return model.to("cuda") if torch.cuda.is_available() else model


def rescorer_kind(name_or_path: str, kind: RescoreKind, option: str = "--rescore",
                  kind_option: str = "--rescore-kind") -> Literal["cross_encoder", "dense", "sparse"]:
    """What the re-scoring model at `name_or_path` is, read from its folder before any weights load (see the module
    docstring). RecipeError (exit 2) naming `kind_option` for a plain checkpoint under auto, cross_encoder for a
    folder without a trained classification head, and dense or sparse for a cross-encoder."""
    form = model_form(name_or_path)
    cross_encoder = form.saved_kind == "cross_encoder" or form.classifier
    if kind == "auto":
        if cross_encoder:
            return "cross_encoder"
        if form.saved_kind is None:
            raise RecipeError(
                f"{option} {name_or_path}: a plain checkpoint (no saved sentence-transformers settings, no trained "
                f"classification head) could re-score as an embedding model or as a cross-encoder, and its folder "
                f"does not say which; set {kind_option} dense (or sparse) to re-score by the similarity of its "
                f"embeddings, or give a trained cross-encoder (a reranker recipe's final model)")
        return form.saved_kind
    if kind == "cross_encoder" and not cross_encoder:
        what = f"a saved {form.saved_kind} model" if form.saved_kind else "a plain checkpoint"
        raise RecipeError(
            f"{kind_option} cross_encoder: {option} {name_or_path} is {what}, without a trained classification head; "
            f"a new head is untrained, and its scores would be noise. Give a trained cross-encoder (train one with a "
            f"reranker recipe, e.g. reranker-bce), or set {kind_option} dense or sparse to re-score by the similarity "
            f"of its embeddings")
    if kind in ("dense", "sparse") and cross_encoder:
        raise RecipeError(f"{kind_option} {kind}: {option} {name_or_path} is a cross-encoder (a reranker), which keeps "
                          f"its kind; set {kind_option} auto or cross_encoder")
    return kind


def load_rescorer(name_or_path: str, kind: RescoreKind, activation: Activation | None, option: str = "--rescore",
                  kind_option: str = "--rescore-kind", activation_option: str = "--rescore-activation") -> PairScorer:
    """The re-scoring model at `name_or_path`, of the kind `rescorer_kind` finds (checked before it loads)."""
    resolved = rescorer_kind(name_or_path, kind, option, kind_option)
    return load_scorer(name_or_path, None if resolved == "cross_encoder" else resolved, option, kind_option,
                       activation, activation_option)


def scorer_kind(scorer: PairScorer) -> str:
    """cross_encoder, dense or sparse: what a loaded scorer is (what a sidecar records)."""
    if isinstance(scorer, BiEncoderScorer):
        return "sparse" if scorer.model.model_type == "SparseEncoder" else "dense"
    return "cross_encoder"


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

"""Loading the models `mine` and `score` use: an embedding model (dense or sparse) or a scorer of pairs.

A cross-encoder (a reranker) is recognised from its folder before anything loads: `config_sentence_transformers.json`
with `model_type: CrossEncoder` (the reference since 5.4), or a plain checkpoint whose `config.json` holds the
reference's `sentence_transformers` settings or a `*ForSequenceClassification` architecture (the older layout).
It scores pairs but cannot embed texts, so `mine --model` refuses it.
"""

from pathlib import Path
from typing import Literal

import torch

from embedtrain.commands.eval import model_form
from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.scoring import BiEncoderScorer, PairScorer
from embedtrain.models.build_sparse import build_sparse_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.io import load_model, resolve_model_path
from embedtrain.models.load_errors import reading_model
from embedtrain.modules.files import read_json

Kind = Literal["dense", "sparse"]

CROSS_ENCODER_MISSING = ("is a cross-encoder (a reranker); this embedtrain has no cross-encoder support yet, so it "
                         "cannot score with it: use a bi-encoder")


def is_cross_encoder(path: Path) -> bool:
    settings = path / "config_sentence_transformers.json"
    if settings.is_file():
        return _json_object(settings).get("model_type") == "CrossEncoder"
    if (path / "modules.json").exists() or not (path / "config.json").is_file():
        return False
    config = _json_object(path / "config.json")
    return "sentence_transformers" in config or any(
        str(name).endswith("ForSequenceClassification") for name in config.get("architectures") or [])


def _json_object(file: Path) -> dict:
    with reading_model(file.parent):
        value = read_json(file)
    return value if isinstance(value, dict) else {}


def load_embedder(name_or_path: str, kind: Kind | None, option: str = "--model") -> SentenceEmbedder:
    """The embedding model at `name_or_path`, on the GPU when there is one: a saved model keeps its kind; a plain
    checkpoint loads dense (mean pooling), or, with kind sparse, as the reference's SparseEncoder builds it (SPLADE
    for a masked-LM checkpoint, else CSR). RecipeError (exit 2) for a cross-encoder or a conflicting kind."""
    path = resolve_model_path(name_or_path)
    if is_cross_encoder(path):
        raise RecipeError(f"{option} {name_or_path}: a cross-encoder (a reranker) scores pairs but cannot embed texts; "
                          f"give an embedding model, and the cross-encoder to --rescore")
    form = model_form(str(path))
    if kind == "dense" and form.saved_kind == "sparse":
        raise RecipeError(f"--kind dense: {name_or_path} is a saved sparse model (SparseEncoder), which keeps its kind; "
                          f"remove --kind")
    chosen = kind or form.saved_kind or "dense"
    model = (build_sparse_model(ModelConfig(base=str(path), kind="sparse"))
             if chosen == "sparse" and form.saved_kind != "sparse" else load_model(path))
    return model.to("cuda") if torch.cuda.is_available() else model


def load_scorer(name_or_path: str, kind: Kind | None, option: str, **bi_encoder_options) -> PairScorer:
    """A scorer of (query, text) pairs: a cross-encoder as it is, any embedding model as a `BiEncoderScorer` (its
    similarity of the two embeddings; `bi_encoder_options` are BiEncoderScorer's)."""
    if is_cross_encoder(resolve_model_path(name_or_path)):
        raise RecipeError(f"{option} {name_or_path} {CROSS_ENCODER_MISSING}")
    return BiEncoderScorer(load_embedder(name_or_path, kind, option), **bi_encoder_options)

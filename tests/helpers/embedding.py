"""Building and reading models the way the model-folder tests do: an embedtrain model from a recipe's `model:` section,
the reference's embeddings, a JSON file of a saved folder."""

import json
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from embedtrain.models import SentenceEmbedder
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig


def build(checkpoint: Path, **settings) -> SentenceEmbedder:
    """An embedtrain model built as a recipe's `model:` section describes it (Dense weights seeded)."""
    torch.manual_seed(0)
    return build_model(ModelConfig.model_validate({"base": str(checkpoint), **settings}))


def st_encode(model: SentenceTransformer, texts: list[str], **kwargs) -> torch.Tensor:
    return model.encode(texts, convert_to_tensor=True, **kwargs)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))

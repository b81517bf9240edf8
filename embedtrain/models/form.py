"""What a model folder holds, read from its configuration files before any weights load: which kind of saved model it
is, and whether it has a trained classification head. `embedtrain eval` chooses how to build a model from it, and
mining recognises a cross-encoder given where an embedding model is needed."""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from embedtrain.models.cross_encoder_io import cross_encoder_settings, has_trained_classifier
from embedtrain.models.io import resolve_model_path
from embedtrain.models.load_errors import reading_model
from embedtrain.modules.files import read_json

SavedKind = Literal["dense", "sparse", "cross_encoder"]


@dataclass(frozen=True)
class ModelForm:
    """A saved model's kind (None for a plain checkpoint), and whether it has a trained sequence-classification head
    (a cross-encoder, or a plain sequence classifier)."""

    path: Path
    saved_kind: SavedKind | None
    classifier: bool = False


def model_form(model_path: str) -> ModelForm:
    path = resolve_model_path(model_path)
    with reading_model(path):
        if cross_encoder_settings(path) is not None:
            return ModelForm(path, "cross_encoder", classifier=True)
        if not (path / "modules.json").exists():
            return ModelForm(path, None, classifier=has_trained_classifier(path))
        settings_file = path / "config_sentence_transformers.json"
        settings = read_json(settings_file) if settings_file.exists() else {}
    return ModelForm(path, "sparse" if settings.get("model_type") == "SparseEncoder" else "dense")

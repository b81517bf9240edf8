"""The model's tokenizer and maximum length alone, for data checks that must run before any weights are loaded."""

from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from embedtrain.data.checks import Tokenization
from embedtrain.errors import ModelLoadError
from embedtrain.models.config import ModelConfig
from embedtrain.models.io import resolve_model_path
from embedtrain.models.load_errors import check_is_model_folder, check_transformer_config, reading_model
from embedtrain.modules.files import read_json
from embedtrain.modules.router import CONFIG_FILE as ROUTER_CONFIG
from embedtrain.modules.transformer import default_max_seq_length, saved_settings


def transformer_folder(path: Path) -> Path:
    """Where the transformer (and its tokenizer) lives: the root, or, in a model with a Router in its root
    (inference-free SPLADE), the folder of the router's transformer."""
    if not (path / ROUTER_CONFIG).exists():
        return path
    types = read_json(path / ROUTER_CONFIG)["types"]
    return path / next((folder for folder, type_string in types.items() if type_string.endswith("Transformer")),
                       next(iter(types)))


def recipe_tokenization(model: ModelConfig) -> Tokenization | None:
    """What the data checks of a recipe's model need (see `load_tokenization`); None for a static model
    (`model.static`, or a static base), which truncates nothing."""
    if model.static is not None:
        return None
    return load_tokenization(model.base, revision=model.revision, max_seq_length=model.max_seq_length,
                             trust_remote_code=model.trust_remote_code, cross_encoder=model.kind == "cross_encoder")


def is_static_model(path: Path) -> bool:
    """Whether the sentence-transformers model folder `path` starts with a StaticEmbedding (no transformer). A
    modules.json that cannot say is not one here: reading the model reports what is wrong with it."""
    try:
        first = read_json(path / "modules.json")[0]
    except (OSError, ModelLoadError, LookupError, TypeError):
        return False
    return isinstance(first, dict) and str(first.get("type", "")).endswith("StaticEmbedding")


def load_tokenization(name_or_path: str, *, revision: str | None = None, max_seq_length: int | None = None,
                      trust_remote_code: bool = False, cross_encoder: bool = False) -> Tokenization | None:
    """The tokenizer and the maximum length the model built from `name_or_path` will have: `max_seq_length`, else
    the saved one (sentence_bert_config.json), else the tokenizer's capped by the position embeddings. A
    `cross_encoder` reads no sentence_bert_config.json (an embedder's setting), as the reference's CrossEncoder.
    None for a static model: it truncates nothing, so its texts' lengths need no check."""
    root = resolve_model_path(name_or_path, revision)
    # Runs before the model is built, so a broken model is first seen here: a ModelLoadError, not transformers' own.
    check_is_model_folder(root)
    if is_static_model(root):
        return None
    with reading_model(root):
        path = transformer_folder(root)
        check_transformer_config(path, trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        max_seq_length = max_seq_length or (None if cross_encoder else saved_settings(path).get("max_seq_length"))
        if max_seq_length is None:
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
            max_seq_length = default_max_seq_length(tokenizer, config)
    return Tokenization(tokenizer, max_seq_length)

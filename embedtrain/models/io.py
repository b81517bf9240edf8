"""Reading and writing models in the sentence-transformers on-disk layout.

Writes the legacy layout (reference §2.13), which sentence-transformers 5.x and 6.x both load;
reads the legacy and the v5.4+ layouts, and plain Hugging Face checkpoints (mean pooling).
Dense models (`model_type` SentenceTransformer) load as SentenceEmbedder, sparse ones (SparseEncoder) as
SparseEmbedder, cross-encoders (CrossEncoder, either layout) as CrossEncoder (read and written by cross_encoder_io).
"""

import logging
from pathlib import Path

import torch

from embedtrain.data.mirror import model_copy
from embedtrain.errors import ModelLoadError
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.cross_encoder_io import cross_encoder_settings, load_cross_encoder, save_cross_encoder
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.load_errors import check_is_model_folder, check_transformer_config, reading_model
from embedtrain.models.sparse_embedder import SparseEmbedder
from embedtrain.models.versions import saved_versions
from embedtrain.modules import (
    Dense,
    MLMTransformer,
    Normalize,
    Pooling,
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    StaticEmbedding,
    Transformer,
)
from embedtrain.modules.files import read_json, write_json
from embedtrain.modules.lora import ADAPTER_CONFIG_FILE, INSTALL_HINT, peft_available, read_adapter_base
from embedtrain.modules.transformer import saved_settings

logger = logging.getLogger(__name__)

MODULE_CLASSES = {cls.__name__: cls for cls in (Transformer, MLMTransformer, StaticEmbedding, Pooling, Dense, Normalize,
                                                 Router, SpladePooling, SparseStaticEmbedding, SparseAutoEncoder)}
MODEL_CLASSES = {cls.model_type: cls for cls in (SentenceEmbedder, SparseEmbedder)}


def resolve_model_path(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local directory as it is; otherwise a hub id: its local copy when the mirror (EMBEDTRAIN_MIRROR) names one,
    else downloaded (or taken from the local hub cache)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{str(path)!r} is a file; a model is a directory")
    if str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1:
        raise ModelLoadError(f"model directory {str(path)!r} does not exist")
    copy = model_copy(str(name_or_path))  # a local copy that EMBEDTRAIN_MIRROR names (revision does not apply)
    if copy is not None:
        return copy
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(name_or_path), revision=revision))
    except Exception as error:  # offline, unknown repo, gated repo, ...
        raise ModelLoadError(f"cannot get model {str(name_or_path)!r} from the Hugging Face hub "
                             f"({type(error).__name__}: {error}). Pass a local model directory instead, or map the hub id to "
                             f"one in a mirror file (EMBEDTRAIN_MIRROR).") from error


def load_model(name_or_path: str | Path, *, revision: str | None = None, trust_remote_code: bool = False,
               attn_implementation: str | None = None, max_seq_length: int | None = None,
               dtype: torch.dtype | None = None) -> SentenceEmbedder | CrossEncoder:
    """Load a sentence-transformers model folder (either layout; dense, sparse or a cross-encoder) or a plain Hugging
    Face checkpoint (as a dense model with mean pooling). `dtype`: the transformer's weights' dtype (None: the
    checkpoint's own, as the reference loads it)."""
    path = resolve_model_path(name_or_path, revision)
    with reading_model(path):
        return _load_from_directory(path, trust_remote_code=trust_remote_code, attn_implementation=attn_implementation,
                                    max_seq_length=max_seq_length, dtype=dtype)


def _load_from_directory(path: Path, *, trust_remote_code: bool, attn_implementation: str | None,
                         max_seq_length: int | None, dtype: torch.dtype | None) -> SentenceEmbedder | CrossEncoder:
    options = {"trust_remote_code": trust_remote_code, "attn_implementation": attn_implementation,
               "max_seq_length": max_seq_length, "dtype": dtype}
    check_is_model_folder(path)
    if cross_encoder_settings(path) is not None:
        return load_cross_encoder(path, max_length=max_seq_length, trust_remote_code=trust_remote_code,
                                  attn_implementation=attn_implementation, dtype=dtype)
    if not (path / "modules.json").exists():
        check_transformer_config(path, trust_remote_code)
        transformer = Transformer.load(path, **options)
        logger.info("%s is a plain Hugging Face checkpoint: adding mean pooling", path)
        return SentenceEmbedder([transformer, Pooling(transformer.embedding_dimension, ("mean",))])

    settings = read_json(path / "config_sentence_transformers.json") if (path / "config_sentence_transformers.json").exists() else {}
    model_type = settings.get("model_type", "SentenceTransformer")
    if model_type not in MODEL_CLASSES:
        raise ModelLoadError(f"{path}: a {model_type} model, not a dense or sparse embedding model")

    def load_module(type_string: str, directory: Path):
        class_name = _module_class_name(type_string, path)
        if class_name == "Router":
            return Router.load(directory, load_module)
        if class_name in ("Transformer", "MLMTransformer"):
            # v5.4+ saves SPLADE's backbone as a Transformer with transformer_task fill-mask.
            fill_mask = class_name == "MLMTransformer" or saved_settings(directory).get("transformer_task") == "fill-mask"
            check_transformer_config(directory, trust_remote_code)
            return (MLMTransformer if fill_mask else Transformer).load(directory, **options,
                                                                       adapter_base=_adapter_base(directory))
        return MODULE_CLASSES[class_name].load(directory)

    modules = [load_module(entry["type"], path / entry.get("path", "")) for entry in read_json(path / "modules.json")]
    common = {"prompts": settings.get("prompts"), "default_prompt_name": settings.get("default_prompt_name")}
    if model_type == "SparseEncoder":
        return SparseEmbedder(modules, **common, similarity_fn_name=settings.get("similarity_fn_name") or "dot",
                              max_active_dims=settings.get("max_active_dims"))
    return SentenceEmbedder(modules, **common, similarity_fn_name=settings.get("similarity_fn_name") or "cosine",
                            truncate_dim=settings.get("truncate_dim"))


def _adapter_base(directory: Path) -> Path | None:
    """The local folder of the base model a saved adapter names (the mirror maps a hub id to its copy), or None
    when `directory` holds no adapter."""
    base = read_adapter_base(directory)
    if base is None:
        return None
    if not peft_available():
        raise ModelLoadError(f"{directory / ADAPTER_CONFIG_FILE}: the model is a LoRA adapter on {base}, which needs "
                             f"the peft package to load; {INSTALL_HINT}")
    return resolve_model_path(base)


def _module_class_name(type_string: str, path: Path) -> str:
    """`sentence_transformers.models.Pooling`, `...modules.pooling.Pooling`, ... -> `Pooling`."""
    if not type_string.startswith("sentence_transformers."):
        raise ModelLoadError(f"{path}/modules.json: module type {type_string!r} is custom code, which embedtrain does "
                             f"not run")
    class_name = type_string.rsplit(".", 1)[-1]
    if class_name not in MODULE_CLASSES:
        raise ModelLoadError(f"{path}/modules.json: module type {type_string!r} is not supported by embedtrain "
                             f"(supported: {sorted(MODULE_CLASSES)})")
    return class_name


def save_model(model: SentenceEmbedder | CrossEncoder, directory: Path) -> None:
    """Write `model` into `directory` (created) in the legacy sentence-transformers layout."""
    if isinstance(model, CrossEncoder):
        save_cross_encoder(model, directory)
        return
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, module in enumerate(model):
        folder = "" if index == 0 else f"{index}_{type(module).__name__}"
        module.save(directory / folder)
        entries.append({"idx": index, "name": str(index), "path": folder, "type": module.st_type})
    write_json(directory / "modules.json", entries)
    settings = {
        "model_type": model.model_type,
        "__version__": saved_versions(),
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "similarity_fn_name": model.similarity_fn_name,
    }
    # Written only when set, as the reference does.
    if model.truncate_dim is not None:
        settings["truncate_dim"] = model.truncate_dim
    if getattr(model, "max_active_dims", None) is not None:
        settings["max_active_dims"] = model.max_active_dims
    write_json(directory / "config_sentence_transformers.json", settings)

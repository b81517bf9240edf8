"""Reading and writing cross-encoders in the sentence-transformers layouts (reference §2.11).

Written in the legacy layout, which sentence-transformers 5.x and 6.x both load with identical scores (§2.13
point 5): a plain Hugging Face folder (`*ForSequenceClassification` config and weights, tokenizer with
`model_max_length` = max_length) whose `config.json` carries `"sentence_transformers": {"activation_fn": ...,
"version": ...}`, plus `config_sentence_transformers.json` (`model_type: CrossEncoder`, prompts), which tools use to
tell a cross-encoder apart and which embedtrain reads its prompts from; no `modules.json` (5.x would ignore it,
and 6.x would then want the v5.4+ module configs).

Read: that layout; the v5.4+ one (`modules.json` with one sequence-classification Transformer, the activation in
`config_sentence_transformers.json`); the pre-4.0 `sbert_ce_default_activation_function` key; and any Hugging Face
checkpoint or sentence-transformers embedder, whose encoder gets a new classification head (as the reference's
CrossEncoder converts them).
"""

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from embedtrain.errors import ModelLoadError
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.load_errors import (
    check_is_model_folder,
    check_transformer_config,
    read_transformer_config,
    reading_model,
)
from embedtrain.models.versions import FORMAT_VERSION, saved_versions
from embedtrain.modules.dense import ACTIVATIONS, Activation
from embedtrain.modules.files import read_json, write_json
from embedtrain.modules.transformer import CONFIG_FILE as TRANSFORMER_CONFIG
from embedtrain.modules.transformer import default_max_seq_length

SETTINGS_FILE = "config_sentence_transformers.json"
LEGACY_ACTIVATION_KEY = "sbert_ce_default_activation_function"  # written by sentence-transformers before 4.0


def cross_encoder_settings(path: Path) -> dict | None:
    """The settings of a saved cross-encoder (config_sentence_transformers.json, {} when absent), or None when `path`
    holds no saved cross-encoder (an embedder, or a plain checkpoint without a cross-encoder's config keys)."""
    settings = read_json(path / SETTINGS_FILE) if (path / SETTINGS_FILE).is_file() else {}
    if (path / "modules.json").exists():
        return settings if settings.get("model_type") == "CrossEncoder" else None
    config = read_transformer_config(path)
    if settings.get("model_type") == "CrossEncoder" or "sentence_transformers" in config or LEGACY_ACTIVATION_KEY in config:
        return settings
    return None


def has_trained_classifier(path: Path) -> bool:
    """Whether the checkpoint in `path` is a sequence classifier (its head is trained), read from config.json."""
    config = read_transformer_config(path)
    return any(name.endswith("ForSequenceClassification") for name in config.get("architectures") or [])


def trained_num_labels(path: Path, trust_remote_code: bool = False) -> int | None:
    """The number of labels of the trained classification head in `path`; None when it has none (a new one is made)."""
    if not has_trained_classifier(path):
        return None
    check_transformer_config(path, trust_remote_code)
    with reading_model(path):
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code).num_labels


def load_cross_encoder(path: Path, *, num_labels: int | None = None, activation: Activation | None = None,
                       max_length: int | None = None, prompts: dict[str, str] | None = None,
                       default_prompt_name: str | None = None, trust_remote_code: bool = False,
                       attn_implementation: str | None = None, dtype: torch.dtype | None = None) -> CrossEncoder:
    """The cross-encoder in the model folder `path` (see the module docstring for what it may hold).

    Arguments override what is saved: `num_labels` sizes a new head (a trained head keeps its own), `activation`
    and `max_length` replace the saved ones, `prompts` are added to the saved ones; `dtype` is the weights' (None:
    the checkpoint's own). ModelLoadError for a folder that cannot be read, or a v5.4+ cross-encoder with modules
    embedtrain does not support (LLM rerankers).
    """
    check_is_model_folder(path)
    settings = cross_encoder_settings(path)
    if settings is not None and (path / "modules.json").exists():
        _check_single_classifier_module(path)
    check_transformer_config(path, trust_remote_code)
    trained = has_trained_classifier(path)
    with reading_model(path):
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        if trained and num_labels is not None and num_labels != config.num_labels:
            raise ModelLoadError(f"{path}: its classification head is trained for {config.num_labels} label(s), not "
                                 f"{num_labels}; keep its number of labels, or start from its encoder alone")
        config.num_labels = config.num_labels if trained else num_labels or 1
        options = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = AutoModelForSequenceClassification.from_pretrained(path, config=config, dtype=dtype or "auto",
                                                                   trust_remote_code=trust_remote_code, **options)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    saved = settings or {}
    return CrossEncoder(model, tokenizer, max_length or default_max_seq_length(tokenizer, config),
                        activation or (_saved_activation(path, settings) if settings is not None else None),
                        prompts=(saved.get("prompts") or {}) | (prompts or {}),
                        default_prompt_name=default_prompt_name or saved.get("default_prompt_name"))


def _check_single_classifier_module(path: Path) -> None:
    """A v5.4+ cross-encoder embedtrain reads: one Transformer in the root with task sequence-classification."""
    entries = read_json(path / "modules.json")
    task = read_json(path / TRANSFORMER_CONFIG).get("transformer_task") if (path / TRANSFORMER_CONFIG).is_file() else None
    if (len(entries) != 1 or entries[0].get("path", "") != "" or not str(entries[0].get("type", "")).endswith("Transformer")
            or task != "sequence-classification"):
        modules = [entry.get("type") for entry in entries]
        raise ModelLoadError(f"{path}/modules.json: a cross-encoder of modules {modules} (transformer_task {task!r}); "
                             f"embedtrain reads cross-encoders that are one sequence-classification transformer, not "
                             f"LLM rerankers (text-generation with a LogitScore module) or extra heads")


def _saved_activation(path: Path, settings: dict) -> Activation | None:
    """The activation a saved cross-encoder names: v5.4+ in config_sentence_transformers.json, earlier versions in
    config.json; None when it names none (the default for its number of labels then applies)."""
    config = read_transformer_config(path)
    saved = (settings.get("activation_fn") or (config.get("sentence_transformers") or {}).get("activation_fn")
             or config.get(LEGACY_ACTIVATION_KEY))
    if saved is None:
        return None
    by_path = {class_path: name for name, (class_path, _) in ACTIVATIONS.items()}
    if saved not in by_path:
        raise ModelLoadError(f"{path}: activation function {saved!r} is not one embedtrain applies (supported: "
                             f"{', '.join(sorted(by_path))}); set the model's activation explicitly")
    return by_path[saved]


def save_cross_encoder(model: CrossEncoder, directory: Path) -> None:
    """Write `model` into `directory` (created) in the legacy layout (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    hf_model = model.model
    hf_model.config.sentence_transformers = {"activation_fn": ACTIVATIONS[model.activation_name][0],
                                             "version": FORMAT_VERSION}
    hf_model.save_pretrained(directory)
    # Both reference generations read the maximum length of a pair from the tokenizer.
    model.tokenizer.model_max_length = model.max_length
    model.tokenizer.save_pretrained(directory)
    write_json(directory / SETTINGS_FILE, {
        "model_type": CrossEncoder.model_type,
        "__version__": saved_versions(),
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
    })

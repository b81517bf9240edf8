"""Why a model folder cannot be read, said as a ModelLoadError that names the folder, the file and the fix.

transformers reports a bad model as a bare OSError or ValueError, and some before any file is read (an unknown
`model_type`, custom code that is not trusted); the checks here read `config.json` first, so that the common cases
get a precise message, and `reading_model` turns what transformers or safetensors still raise into ModelLoadError.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from embedtrain.errors import ModelLoadError, did_you_mean

REMOTE_CODE_RISK = ("embedtrain does not run a model's own code unless the recipe sets model.trust_remote_code: true, "
                    "which runs that Python code on this machine with your permissions; set it only for a model whose "
                    "code you have read and trust")
COMPLETE_FOLDER = ("a model folder holds config.json, the weights (model.safetensors) and the tokenizer files; check "
                   "that it is complete, or pass another model")


def check_is_model_folder(folder: Path) -> None:
    """Raise ModelLoadError unless `folder` is a sentence-transformers model or a Hugging Face checkpoint."""
    if not (folder / "modules.json").exists() and not (folder / "config.json").exists():
        raise ModelLoadError(f"{folder}: neither a sentence-transformers model (modules.json) nor a Hugging Face "
                             f"checkpoint (config.json)")


def read_transformer_config(folder: Path) -> dict:
    """`folder/config.json` as a dict ({} when there is none); ModelLoadError naming the line when it is not a JSON
    object."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return {}
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ModelLoadError(f"{config_file}: not UTF-8 text ({error.reason}); {COMPLETE_FOLDER}") from error
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{config_file}:{error.lineno}:{error.colno}: not valid JSON ({error.msg}); "
                             f"repair or replace the file") from error
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_file}: a model config is a JSON object, not a {type(config).__name__}")
    return config


def check_transformer_config(folder: Path, trust_remote_code: bool) -> None:
    """Raise ModelLoadError when `folder/config.json` exists but cannot describe a model transformers can build
    without running code it was not allowed to run. A missing config.json is left to the loader."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return
    config = read_transformer_config(folder)
    if "auto_map" in config:
        if not trust_remote_code:
            raise ModelLoadError(f"{config_file}: this model needs its own Python code to load (auto_map: "
                                 f"{sorted(config['auto_map'])}); {REMOTE_CODE_RISK}")
        return  # its own code defines its model_type
    _check_model_type(config_file, config.get("model_type"))


def _check_model_type(config_file: Path, model_type) -> None:
    from transformers import __version__ as transformers_version
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type is None:
        raise ModelLoadError(f"{config_file}: no model_type key, so transformers cannot tell which architecture this "
                             f"is; add it (e.g. \"model_type\": \"bert\")")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        hint = did_you_mean(str(model_type), list(CONFIG_MAPPING.keys()))
        raise ModelLoadError(f"{config_file}: model_type {model_type!r} is not an architecture the installed "
                             f"transformers {transformers_version} knows{hint}; fix model_type, or upgrade "
                             f"transformers if the model is newer than it")


@contextmanager
def reading_model(path: Path | str) -> Iterator[None]:
    """Turn the errors that mean a broken or unusable model into ModelLoadError naming `path`: files missing or
    unreadable (OSError), configs transformers rejects or malformed JSON (ValueError), damaged weights
    (SafetensorError). Anything else is a bug in embedtrain, not a bad model, and is left alone."""
    try:
        yield
    except ModelLoadError:
        raise
    except (OSError, ValueError, SafetensorError) as error:
        raise ModelLoadError(describe_load_error(path, error)) from error


def describe_load_error(path: Path | str, error: Exception) -> str:
    summary = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, ValueError) and "custom code" in str(error):
        # A tokenizer (tokenizer_config.json's auto_map) can ask for code too, which config.json does not show.
        return f"{path}: this model needs its own Python code to load; {REMOTE_CODE_RISK}"
    return f"{path}: cannot read the model ({type(error).__name__}: {summary}); {COMPLETE_FOLDER}"

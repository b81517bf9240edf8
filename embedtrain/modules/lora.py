"""LoRA adapters on a Transformer module's encoder, through peft's functional API (`peft.functional`).

peft is optional (`pip install 'embedtrain[lora]'`): it is imported only when an adapter is added, saved or read.
transformers' own adapter methods (`add_adapter`, ...) are not used: they refuse peft releases older than the one
they were built against (transformers 5.24 wants peft 0.22), while the functional API works with the releases the
`lora` extra allows and writes the same files.

On disk an adapter is what transformers' `save_pretrained` writes for a model carrying one, and what
sentence-transformers loads: `adapter_config.json` (peft's LoraConfig, `base_model_name_or_path` naming the base
model) and `adapter_model.safetensors` (the adapter's weights only, keys prefixed `base_model.model.`), in place of
`config.json` and `model.safetensors`.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from embedtrain.modules.files import read_json

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_NAME = "default"  # peft's name for a model's only adapter
PEFT_KEY_PREFIX = "base_model.model."  # peft's format for weights saved off a PeftModel wrapper
INSTALL_HINT = "install the optional extra: pip install 'embedtrain[lora]' (it adds peft)"


def peft_available() -> bool:
    """Whether peft can be imported (importing it, as every later use does, so a broken install counts as missing)."""
    try:
        importlib.import_module("peft")
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class LoraSettings:
    """What a new adapter is: rank, scaling (`alpha / r`), dropout on its input, the layers it adapts (None: peft's
    default for the architecture, e.g. BERT's query and value projections; "all-linear": every linear layer but the
    output head) and the base model it belongs to, as saved for others to load it (a hub id or the path as given)."""

    r: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...] | str | None
    base_model_name_or_path: str


def add_lora(model: nn.Module, settings: LoraSettings):
    """Inject a fresh LoRA adapter into `model` (in place) and freeze every other weight of it; returns the peft
    LoraConfig, which `save_adapter` writes. The adapter starts as a no-op (peft initialises B to zero)."""
    from peft import LoraConfig
    from peft.functional import cast_adapter_dtype, inject_adapter_in_model

    target_modules = list(settings.target_modules) if isinstance(settings.target_modules, tuple) else settings.target_modules
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=target_modules, base_model_name_or_path=settings.base_model_name_or_path)
    inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)  # fills in target_modules, freezes the rest
    cast_adapter_dtype(model, ADAPTER_NAME)  # see load_adapter
    return config


def read_adapter_base(directory: Path) -> str | None:
    """The base model an adapter folder names, or None when `directory` holds no adapter."""
    path = directory / ADAPTER_CONFIG_FILE
    return read_json(path).get("base_model_name_or_path") if path.exists() else None


def load_adapter(model: nn.Module, directory: Path):
    """Inject the adapter saved in `directory` into `model` (its base model, in place), with its trained weights;
    returns its peft config. Only the adapter's weights stay trainable, so training continues the adapter."""
    from peft import LoraConfig
    from peft.functional import cast_adapter_dtype, inject_adapter_in_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    config = LoraConfig.from_pretrained(str(directory))
    inject_adapter_in_model(config, model, adapter_name=ADAPTER_NAME)
    # peft gives the adapter the base layers' dtype; on a bf16 base it is trained and kept in fp32 (as
    # transformers' and peft's own loaders do), so its small updates are not rounded away.
    cast_adapter_dtype(model, ADAPTER_NAME)
    weights = {key.removeprefix(PEFT_KEY_PREFIX): value for key, value in load_file(directory / ADAPTER_WEIGHTS_FILE).items()}
    result = set_peft_model_state_dict(model, weights, adapter_name=ADAPTER_NAME)
    if result.unexpected_keys:
        raise ValueError(f"{directory / ADAPTER_WEIGHTS_FILE}: weights for layers the base model lacks: "
                         f"{result.unexpected_keys[:3]}")
    return config


def save_adapter(model: nn.Module, config, directory: Path) -> None:
    """Write the adapter of `model` (its weights only) and its config into `directory`."""
    from peft.functional import get_peft_model_state_dict
    from safetensors.torch import save_file

    # The embedding matrices are saved only when the vocabulary was resized, which embedtrain never does; "auto" would
    # ask the hub for the base model's config to find out.
    weights = get_peft_model_state_dict(model, adapter_name=ADAPTER_NAME, save_embedding_layers=False)
    save_file({PEFT_KEY_PREFIX + key: value.contiguous() for key, value in weights.items()},
              str(directory / ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})
    config.save_pretrained(str(directory))


def merge_adapter(model: nn.Module) -> nn.Module:
    """`model` with its adapter folded into the base weights (`W + B A * alpha / r`) and the adapter layers
    removed: a plain model that saves as full weights."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child_name = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child_name, module.get_base_layer())
    return model

"""Small helpers for module folders: JSON configs and safetensors weights."""

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_model
from torch import nn

from embedtrain.errors import ModelLoadError

WEIGHTS_FILE = "model.safetensors"


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"{path}: not valid JSON ({error})") from None


def save_weights(module: nn.Module, directory: Path) -> None:
    # save_model (not save_file) de-duplicates tied tensors, as the reference does.
    save_model(module, str(directory / WEIGHTS_FILE))


def load_weights(module: nn.Module, directory: Path) -> None:
    module.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))

"""Names a card may show for what a run read: hub ids, and never a path of this machine."""

import json
import re
from pathlib import Path

from embedtrain.data.mirror import hub_id_of
from embedtrain.data.source import is_local, public_name

_HUB_CACHE_FOLDER = re.compile(r"^models--(?P<org>[^/]+?)--(?P<name>[^/]+)$")
"""huggingface_hub's cache names a model's folder `models--<org>--<name>` (its snapshots below it)."""


def hub_id(source: str) -> str | None:
    """The hub id of a model or dataset source: itself, or the hub id whose local copy (through the mirror) it is."""
    return source if not is_local(source) else hub_id_of(Path(source))


def base_model_id(base: str) -> str | None:
    """The hub id of the model a run started from, or None when it cannot be known.

    A hub id as given, or one the mirror copies; a snapshot in huggingface_hub's cache (`.../models--org--name/
    snapshots/<sha>`); else a plain Hugging Face checkpoint whose config.json names a hub id in `_name_or_path` (older
    transformers wrote it on save). A sentence-transformers folder's `_name_or_path` is not used: it names the model
    that folder was itself trained from (all-MiniLM-L6-v2's names nreimers/MiniLM-L6-H384-uncased)."""
    if (found := hub_id(base)) is not None:
        return found
    path = Path(base).expanduser()
    for part in path.resolve().parts:
        if match := _HUB_CACHE_FOLDER.match(part):
            return f"{match['org']}/{match['name']}"
    config = path / "config.json"
    if (path / "modules.json").exists() or not config.is_file():
        return None
    try:
        named = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError):
        return None
    return named if isinstance(named, str) and named and not is_local(named) and named.count("/") == 1 else None


def without_local_paths(value):
    """`value` (a recipe or part of it, as JSON) as a card may show it: every absolute path (a model, data, a
    teacher, the output directory...) by its public name."""
    if isinstance(value, dict):
        return {key: without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_local_paths(item) for item in value]
    if isinstance(value, str) and value.startswith(("/", "~")):
        return public_name(value)
    return value

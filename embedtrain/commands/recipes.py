"""`embedtrain recipes ls|show|cp`: the recipe catalogue that ships inside the package (`embedtrain.catalogue`, built
from recipes/ at the top of the repository).

A recipe is one YAML file; the catalogue reads what it lists from the recipe itself: its name (the file name), its
model kind, losses and training data (from the YAML), and its purpose and expected time from two header comment
lines, `# purpose: ...` and `# time: ...`. Adding a recipe is adding its file.
"""

import os
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape
from rich.table import Table

from embedtrain.errors import RecipeError, did_you_mean

CATALOGUE_PACKAGE = "embedtrain.catalogue"
METADATA_KEYS = ("purpose", "time")
SCHEMA_FILE = "recipe.schema.json"
"""What the schema comment of a copied recipe names: a file beside the recipe, written by `embedtrain schema
--output recipe.schema.json` (yaml-language-server resolves a relative $schema from the recipe's folder)."""
SCHEMA_COMMENT = f"# yaml-language-server: $schema={SCHEMA_FILE}\n"
PACKAGED_PREFIX = "recipes/"
"""How a recipe names a file of the catalogue (the quickstart's demo data): relative to the repository root, where a
clone runs it; `recipes cp` copies such files beside the copy and rewrites the paths."""


@dataclass(frozen=True)
class CatalogueRecipe:
    name: str
    text: str
    purpose: str
    time: str
    kind: str
    losses: list[str]
    data: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "losses": self.losses, "data": self.data,
                "purpose": self.purpose, "time": self.time}


@dataclass(frozen=True)
class CopiedRecipe:
    recipe: Path
    data: list[Path]


def catalogue_root() -> Traversable:
    try:
        return resources.files(CATALOGUE_PACKAGE)
    except ModuleNotFoundError:  # a checkout whose installation predates the catalogue
        raise RecipeError(f"the recipe catalogue ({CATALOGUE_PACKAGE}) is not installed; reinstall embedtrain "
                          f"(`pip install -e .` in a clone)") from None


def recipe_names() -> list[str]:
    return sorted(entry.name.removesuffix(".yaml") for entry in catalogue_root().iterdir()
                  if entry.name.endswith(".yaml"))


def catalogue() -> list[CatalogueRecipe]:
    """Every recipe of the catalogue, by name."""
    return [read_recipe(name) for name in recipe_names()]


def read_recipe(name: str) -> CatalogueRecipe:
    """A recipe of the catalogue; RecipeError (exit 2) for an unknown name, with the closest one."""
    names = recipe_names()
    if name.removesuffix(".yaml") not in names:
        raise RecipeError(f"no recipe {name!r} in the catalogue{did_you_mean(name, names)}; `embedtrain recipes ls` "
                          f"lists them: {', '.join(names)}")
    name = name.removesuffix(".yaml")
    text = (catalogue_root() / f"{name}.yaml").read_text(encoding="utf-8")
    metadata = header_metadata(name, text)
    content = yaml.safe_load(text)
    return CatalogueRecipe(name, text, metadata["purpose"], metadata["time"], model_kind(content.get("model") or {}),
                           [describe_loss(spec) for spec in (content.get("losses") or {}).values()],
                           training_data(content))


def header_metadata(name: str, text: str) -> dict[str, str]:
    """The `# purpose:` and `# time:` lines of the recipe's leading comment block; RecipeError if one is missing."""
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    found = {}
    for line in header:
        match = re.match(r"#\s*(\w+):\s*(.+)$", line)
        if match and match.group(1) in METADATA_KEYS:
            found[match.group(1)] = match.group(2).strip()
    missing = [key for key in METADATA_KEYS if key not in found]
    if missing:
        raise RecipeError(f"recipe {name}: its first comment lines must include "
                          f"{' and '.join(f'`# {key}: ...`' for key in missing)} (what `embedtrain recipes ls` shows)")
    return found


def model_kind(model: dict) -> str:
    """dense, dense (static), dense (LoRA), sparse (splade|inference_free_splade|csr), or any other `model.kind` as it
    is."""
    kind = model.get("kind", "dense")
    if kind == "sparse":
        return f"sparse ({model['architecture']})" if model.get("architecture") else "sparse"
    if kind == "dense" and model.get("static"):
        return "dense (static)"
    if kind == "dense" and model.get("lora"):
        return "dense (LoRA)"
    return str(kind)


def describe_loss(spec: dict) -> str:
    """`Type`, or `Wrapper(Inner)` for a loss that wraps another."""
    inner = spec.get("loss")
    return f"{spec['type']}({describe_loss(inner)})" if isinstance(inner, dict) else str(spec["type"])


def training_data(content: dict) -> list[str]:
    """The training datasets' sources (hub id and subset, or the name of a file that ships with the recipe), each
    once, in recipe order."""
    data = []
    for config in ((content.get("datasets") or {}).get("train") or {}).values():
        source = config["source"] + (f" ({config['subset']})" if config.get("subset") else "")
        if source.startswith(PACKAGED_PREFIX):
            source = f"{Path(source).name} (ships with the recipe)"
        if source not in data:
            data.append(source)
    return data


def recipe_table(recipes: list[CatalogueRecipe]) -> Table:
    table = Table(show_lines=True)
    table.add_column("recipe", no_wrap=True)
    for header in ("model", "loss", "training data", "purpose", "time (1 run)"):
        table.add_column(header, overflow="fold")  # hub ids and loss names wrap rather than lose their end
    for recipe in recipes:
        cells = [recipe.name, recipe.kind, "\n".join(recipe.losses), "\n".join(recipe.data), recipe.purpose, recipe.time]
        table.add_row(*(escape(cell) for cell in cells))
    return table


def copy_recipe(name: str, destination: str | None, force: bool = False) -> CopiedRecipe:
    """Write recipe `name` to `destination` (default ./NAME.yaml; a folder, existing or ending with a slash:
    NAME.yaml in it), starting with the schema comment, and the catalogue files it reads (demo data) to NAME-data/
    beside it, its paths rewritten relative to the current directory. Nothing is replaced without `force`
    (RecipeError, exit 2, before anything is written)."""
    recipe = read_recipe(name)
    target = Path(destination or f"{recipe.name}.yaml")
    if target.is_dir() or (destination or "").endswith(("/", os.sep)):
        target = target / f"{recipe.name}.yaml"
    files = {source: target.parent / f"{recipe.name}-data" / Path(source).name
             for source in packaged_sources(yaml.safe_load(recipe.text))}
    existing = [str(path) for path in (target, *files.values()) if path.exists()]
    if existing and not force:
        raise RecipeError(f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; add --force to "
                          f"overwrite, or give another destination")
    text = recipe.text
    for source, copy in files.items():
        shown = Path(os.path.relpath(copy)).as_posix()
        text = re.sub(rf"(source:\s*)([\"']?){re.escape(source)}\2(?=\s)",
                      lambda match, shown=shown: match.group(1) + shown, text)
    try:
        for source, copy in files.items():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes((catalogue_root() / source.removeprefix(PACKAGED_PREFIX)).read_bytes())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(SCHEMA_COMMENT + text, encoding="utf-8")
    except OSError as error:
        raise RecipeError(f"cannot write the copy of {recipe.name} ({error.strerror or error}: "
                          f"{error.filename or target})") from None
    return CopiedRecipe(target, list(files.values()))


def packaged_sources(content: dict) -> list[str]:
    """The `source:` values that name files of the catalogue itself (`recipes/...`), each once."""
    datasets = content.get("datasets") or {}
    configs = [*(datasets.get("train") or {}).values(), *(datasets.get("eval") or {}).values(),
               *(content.get("evaluators") or [])]
    sources = []
    for config in configs:
        source = config.get("source")
        if isinstance(source, str) and source.startswith(PACKAGED_PREFIX) and source not in sources:
            sources.append(source)
    return sources

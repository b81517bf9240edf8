"""The package layers: every import in embedtrain/ points downward, and no two packages import each other.

The table is the architecture of README.md ("Architecture"): a package may import packages of a lower layer, and
of its own layer when that creates no cycle. Checked twice: statically over every import statement (deferred imports
inside functions included), and by importing the layers bottom-up in a fresh interpreter, where a layer must not
load any module of a layer above it.
"""

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import embedtrain

PACKAGE = Path(embedtrain.__file__).parent
LAYERS = [
    ("errors", "config", "similarity"),  # typed errors and exit codes, the strict base model, similarity functions
    ("modules",),  # nn.Modules with their config and ST-layout save/load
    ("data", "models"),  # data sources, contract, checks, samplers, batches; embedders, their configs, model I/O
    ("losses", "evaluation"),  # one registry each
    ("recipe",),  # the composition layer: whole-recipe schema, loading, checks, data plan, building
    ("card",),  # model card
    ("engine",),  # the loop, loaders, optimizer, checkpoints
    ("commands", "console"),  # one module per CLI command; rich output
    ("cli",),  # the typer app
    ("__main__",),
]
LAYER = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def package_of(module: str) -> str:
    """embedtrain.models.build -> models; embedtrain -> __init__ (the version only, importable from anywhere)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the files with such an import, over every import statement."""
    edges = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        source = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "embedtrain":
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.split(".")[0] == "embedtrain"]
            for name in names:
                target = package_of(name)
                if target != source:
                    edges[source, target].append(str(relative))
    return edges


def test_every_package_has_a_layer():
    packages = {path.name.removesuffix(".py") for path in PACKAGE.iterdir()
                if (path.suffix == ".py" or (path / "__init__.py").exists()) and path.name != "__init__.py"}
    assert packages == set(LAYER), "add new packages to LAYERS here and to the README's architecture table"


def test_no_import_runs_upward_and_no_package_cycle():
    edges = import_edges()
    upward = {f"{source} -> {target} ({', '.join(files)})" for (source, target), files in edges.items()
              if target != "__init__" and LAYER[target] > LAYER[source]}
    cycles = {f"{source} <-> {target}" for (source, target) in edges
              if target != "__init__" and (target, source) in edges}
    assert not upward, f"imports against the layer order: {sorted(upward)}"
    assert not cycles, f"packages that import each other: {sorted(cycles)}"


LOAD_LAYERS_BOTTOM_UP = """
import importlib, json, pkgutil, sys
layers = json.loads(sys.argv[1])
loaded_too_early = []
for rank, packages in enumerate(layers):
    for package in packages:
        module = importlib.import_module(f"embedtrain.{package}")
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):  # every module of the package
            importlib.import_module(f"embedtrain.{package}.{info.name}")
    above = {p for higher in layers[rank + 1:] for p in higher}
    loaded_too_early += [(packages, name) for name in sys.modules
                         if name.startswith("embedtrain.") and name.split(".")[1] in above]
print(json.dumps(loaded_too_early))
"""


def test_importing_a_layer_loads_nothing_above_it():
    layers = [[package for package in packages if package != "__main__"] for packages in LAYERS]
    result = subprocess.run([sys.executable, "-c", LOAD_LAYERS_BOTTOM_UP, json.dumps(layers)],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []

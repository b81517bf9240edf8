"""A router: different module stacks for queries and documents (inference-free SPLADE).

How a route is chosen, as in the reference's Router: the *task* ("query", "document", or any route name) is
given to `tokenize(texts, prompt, task)`, which tokenizes with the route's first module and stamps the task into
the features as `features["task"]`; `forward(features)` reads it back from there (a `task=` argument, as the
reference's `forward(features, task=...)` takes, wins over it). So a loss simply calls `model(features)` on
features the collator tokenized for a route, and `encode(..., task="query")` routes at inference. Without a
task the `default_route` is used (normally "document").

Saved in the model's root folder as `router_config.json` ({"types", "structure", "parameters"}) with one folder
per sub-module, `{route}_{position}_{ClassName}` (the legacy layout, which sentence-transformers 5.x and 6.x load).
"""

import ast
from pathlib import Path

from torch import Tensor, nn

from embedtrain.errors import ModelLoadError
from embedtrain.modules.files import read_json, write_json

CONFIG_FILE = "router_config.json"
TEXT = "text"


class Router(nn.Module):
    st_type = "sentence_transformers.models.Router"

    def __init__(self, routes: dict[str, list[nn.Module]], default_route: str | None = "document",
                 allow_empty_key: bool = True, route_mappings: dict[tuple[str | None, str | None], str] | None = None) -> None:
        super().__init__()
        if not routes:
            raise ValueError("a Router needs at least one route")
        if default_route is not None and default_route not in routes:
            raise ValueError(f"default route {default_route!r} is not one of the routes {list(routes)}")
        # Parameter names are `sub_modules.{route}.{position}.…`, the reference's, so learning-rate patterns
        # written for one work for the other.
        self.sub_modules = nn.ModuleDict({route: nn.Sequential(*modules) for route, modules in routes.items()})
        self.default_route = default_route if default_route is not None or not allow_empty_key else next(iter(routes))
        self.allow_empty_key = allow_empty_key
        self.route_mappings = dict(route_mappings or {})
        unknown = sorted(set(self.route_mappings.values()) - set(routes))
        if unknown:
            raise ValueError(f"route_mappings point to {unknown}, which are not routes ({list(routes)})")

    def resolve(self, task: str | None) -> str:
        """The route for `task`, in the reference's order for text: (task, text), (task, any), (any, text),
        (any, any) in `route_mappings`; then the task as a route name; then the default route."""
        for key in ((task, TEXT), (task, None), (None, TEXT), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task is not None and task in self.sub_modules:
            return task
        if task is not None:
            raise ValueError(f"no route for task {task!r}; the routes are {list(self.sub_modules)}")
        if self.default_route is None:
            raise ValueError(f"no task given and no default route; pass a task, one of {list(self.sub_modules)}")
        return self.default_route

    def input_module(self, task: str | None) -> nn.Module:
        """The module that tokenizes texts for `task`'s route."""
        return self.sub_modules[self.resolve(task)][0]

    @property
    def routes(self) -> list[str]:
        return list(self.sub_modules)

    @property
    def embedding_dimension(self) -> int:
        """The default route's output size: that of its last module that knows it (SpladePooling may not)."""
        route = self.sub_modules[self.default_route or self.routes[0]]
        return next(module.embedding_dimension for module in reversed(route) if module.embedding_dimension)

    @property
    def max_seq_length(self) -> int:
        return max(route[0].max_seq_length for route in self.sub_modules.values())

    @property
    def tokenizer(self):
        """The default route's tokenizer (both routes of inference-free SPLADE share one vocabulary)."""
        return self.input_module(None).tokenizer

    def tokenize(self, texts: list[str], prompt: str | None = None, task: str | None = None) -> dict:
        features = self.input_module(task).tokenize(texts, prompt)
        if task is not None:
            features["task"] = task
        return features

    def token_counts(self, texts: list[str], prompt: str | None = None, task: str | None = None) -> list[int]:
        return self.input_module(task).token_counts(texts, prompt)

    def forward(self, features: dict[str, Tensor], task: str | None = None, **kwargs) -> dict[str, Tensor]:
        for module in self.sub_modules[self.resolve(task if task is not None else features.get("task"))]:
            accepted = {key: value for key, value in kwargs.items() if key in getattr(module, "forward_kwargs", ())}
            features = module(features, **accepted)
        return features

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        types, structure = {}, {}
        for route, modules in self.sub_modules.items():
            structure[route] = []
            for position, module in enumerate(modules):
                folder = f"{route}_{position}_{type(module).__name__}"
                module.save(directory / folder)
                types[folder] = module.st_type
                structure[route].append(folder)
        parameters = {"default_route": self.default_route, "allow_empty_key": self.allow_empty_key}
        if self.route_mappings:  # the v5.4+ key: written only when set, so that 5.x loaders still read the file
            parameters["route_mappings"] = {str(key): route for key, route in self.route_mappings.items()}
        write_json(directory / CONFIG_FILE, {"types": types, "structure": structure, "parameters": parameters})

    @classmethod
    def load(cls, directory: Path, load_module) -> "Router":
        """`load_module(type_string, folder)` loads one sub-module (the model loader's dispatch by type)."""
        path = directory / CONFIG_FILE if (directory / CONFIG_FILE).exists() else directory / "config.json"
        config = read_json(path)
        if "types" not in config or "structure" not in config:
            raise ModelLoadError(f"{path}: not a Router config (no types/structure)")
        for folder in config["types"]:
            if Path(folder).is_absolute() or ".." in Path(folder).parts:
                raise ModelLoadError(f"{path}: sub-module folder {folder!r} is outside the model folder")
        modules = {folder: load_module(type_string, directory / folder) for folder, type_string in config["types"].items()}
        parameters = dict(config.get("parameters", {}))
        mappings = {ast.literal_eval(key): route for key, route in (parameters.pop("route_mappings", None) or {}).items()}
        routes = {route: [modules[folder] for folder in folders] for route, folders in config["structure"].items()}
        return cls(routes, parameters.get("default_route"), parameters.get("allow_empty_key", True), mappings)

"""Load a recipe: YAML (safely) -> `--set` overrides -> validation, with every problem reported at once.

Each problem names the file, the YAML line and the key path, and unknown keys get a did-you-mean.
"""

import inspect
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from embedtrain.errors import RecipeError, did_you_mean
from embedtrain.recipe.checks import recipe_problems
from embedtrain.recipe.overrides import apply_override
from embedtrain.recipe.safe_yaml import parse_yaml
from embedtrain.recipe.schema import Recipe

KeyPath = tuple[str | int, ...]


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate the recipe at `path`; raise RecipeError listing every problem."""
    path = Path(path)
    text = _read(path)
    try:
        raw, root = parse_yaml(text, str(path))
        lines = _line_numbers(root, path)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
        started = f" ({context} at line {context_mark.line + 1})" if context and context_mark else ""
        raise RecipeError(f"{where}: invalid YAML: {getattr(error, 'problem', None) or error}{started}") from error
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections (model, losses, datasets, training, ...), "
                          f"got {type(raw).__name__}")
    for override in overrides or []:
        apply_override(raw, override)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as error:
        problems = [(_data_path(raw, item["loc"]), _message(item)) for item in error.errors()]
        raise RecipeError(format_problems(problems, lines, path)) from None
    if problems := recipe_problems(recipe):
        raise RecipeError(format_problems(problems, lines, path))
    return recipe


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file not found") from None
    except UnicodeDecodeError as error:
        raise RecipeError(f"{path}: not UTF-8 text (byte {error.start}): is this really a YAML recipe?") from None
    except OSError as error:
        raise RecipeError(f"{path}: cannot read the recipe: {error.strerror}") from None


def _line_numbers(node: yaml.Node | None, path: Path, prefix: KeyPath = ()) -> dict[KeyPath, int]:
    """Key path -> 1-based line of that key in the YAML; also rejects duplicate keys (YAML keeps the last silently)."""
    lines: dict[KeyPath, int] = {}
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise RecipeError(f"{path}:{key_node.start_mark.line + 1}: {_dotted(prefix + (key,))}: "
                                  f"duplicate key (YAML would silently keep only the last one)")
            seen.add(key)
            lines[prefix + (key,)] = key_node.start_mark.line + 1
            lines |= _line_numbers(value_node, path, prefix + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[prefix + (index,)] = item.start_mark.line + 1
            lines |= _line_numbers(item, path, prefix + (index,))
    return lines


def format_problems(problems: list[tuple[KeyPath, str]], lines: dict[KeyPath, int], path: Path) -> str:
    """One line per problem, `file:line: key.path: message`, in file order."""
    rendered = []
    for location, message in problems:
        line = next((lines[location[:n]] for n in range(len(location), 0, -1) if location[:n] in lines), None)
        key = _dotted(location) or "(recipe)"
        rendered.append((line or 0, f"  {path}:{line}: {key}: {message}" if line else f"  {path}: {key}: {message}"))
    rendered.sort(key=lambda problem: problem[0])
    count = len(rendered)
    header = f"{path}: {count} problem{'s' if count > 1 else ''} in the recipe:"
    return "\n".join([header] + [text for _, text in rendered])


def _data_path(raw: Any, loc: tuple) -> KeyPath:
    """Pydantic's error location without the union tags it inserts (they are not keys of the YAML)."""
    result: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and part == loc[-1]:
            node = None  # a missing or unknown key: it is still part of the path
        else:
            continue  # a union tag such as 'CoSENTLoss'
        result.append(part)
    return tuple(result)


def _dotted(location: KeyPath) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(item: dict) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(item["loc"][:-1])
        hint = did_you_mean(str(item["loc"][-1]), allowed)
        return f"unknown key{hint}" + (f"; allowed keys: {', '.join(allowed)}" if allowed and not hint else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        tag, expected = item["ctx"]["tag"], item["ctx"]["expected_tags"]
        options = [option.strip().strip("'") for option in expected.split(",")]
        return f"unknown type {tag!r}{did_you_mean(tag, options)}; known types: {', '.join(options)}"
    if kind == "union_tag_not_found":
        known = [tag for member in _members(_step_through(item["loc"])) for tag in _type_tags(member)]
        return f"needs a `type:` key; known types: {', '.join(known)}"
    message = item["msg"].removeprefix("Value error, ")
    if "input" in item and not isinstance(item["input"], (dict, list)) and kind != "value_error":
        message += f" (got {item['input']!r})"
    return message


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys the schema accepts at `loc` (pydantic's location, union tags included)."""
    model = _model_class(_step_through(loc))
    return list(model.model_fields) if model else []


def _step_through(loc: tuple) -> Any:
    """The schema annotation at `loc`, or None when the location leaves the schema."""
    annotation: Any = Recipe
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    return annotation


def _type_tags(member: Any) -> tuple:
    """The `type:` values a discriminated-union member accepts."""
    if inspect.isclass(member) and issubclass(member, BaseModel) and "type" in member.model_fields:
        return get_args(member.model_fields["type"].annotation)
    return ()


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [_unwrap(member) for member in get_args(annotation) if member is not type(None)]
    return [annotation]


def _model_class(annotation: Any) -> type[BaseModel] | None:
    models = [m for m in _members(annotation) if inspect.isclass(m) and issubclass(m, BaseModel)]
    return models[0] if len(models) == 1 else None


def _step(annotation: Any, part: str | int) -> Any:
    members = _members(annotation)
    for member in members:  # discriminated union: the part is the tag of one member
        if part in _type_tags(member):
            return member
    model = _model_class(annotation)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field else None
    container = next((m for m in members if get_origin(m) in (dict, list)), None)
    if container is None:
        return None
    return get_args(container)[-1] if get_origin(container) is dict else get_args(container)[0]


def dump_recipe(recipe: Recipe) -> str:
    """The fully resolved recipe (defaults included) as YAML."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

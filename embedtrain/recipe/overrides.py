"""The one KEY=VALUE syntax of the command line: `--set` (recipes and eval options) and `--loss-option`.

The value is read as YAML (`3`, `0.5`, `true`, `null`, `[cosine, dot]`, `'3'` for the string), and a dotted
key (`training.learning_rate`, `losses.cosent.scale`, `evaluators.0.batch_size`) reaches a nested field,
creating missing sections on the way. Every error names the option and the expected syntax.
"""

from typing import Any

import yaml

from embedtrain.errors import RecipeError
from embedtrain.recipe.safe_yaml import parse_yaml

KEY_VALUE_SYNTAX = "KEY.PATH=VALUE, e.g. training.learning_rate=1e-5"


def split_key_value(item: str, option: str, syntax: str = KEY_VALUE_SYNTAX,
                    require_value: bool = False) -> tuple[str, str]:
    """`key=value` -> (key, value), split at the first `=` (a value may hold more); RecipeError naming `option`
    and showing `syntax` when malformed. An empty value is allowed unless `require_value` (`--set key=` is '')."""
    key, separator, value = item.partition("=")
    if not separator or not key.strip() or (require_value and not value.strip()):
        raise RecipeError(f"{option} {item!r}: expected {syntax}")
    return key.strip(), value.strip()


def apply_override(target: dict, item: str, option: str = "--set") -> None:
    """Set `a.b.c=value` in the nested dict `target` (numeric parts index lists); the value is parsed as YAML."""
    key, value = split_key_value(item, option)
    parts = key.split(".")
    node: Any = target
    for part in parts[:-1]:
        node = _child(node, part, item, option)
    try:
        parsed = parse_yaml(value, f"{option} {item!r}")[0] if value else ""
    except yaml.YAMLError as error:
        raise RecipeError(f"{option} {item!r}: the value is not valid YAML: {error}") from None
    if isinstance(node, list):
        node[_index(node, parts[-1], item, option)] = parsed
    elif isinstance(node, dict):
        node[parts[-1]] = parsed
    else:
        raise RecipeError(f"{option} {item!r}: {'.'.join(parts[:-1])} is a value, not a section")


def parse_overrides(items: list[str], option: str) -> dict:
    """Several KEY=VALUE items -> one nested dict (a later item wins over an earlier one)."""
    target: dict = {}
    for item in items:
        apply_override(target, item, option)
    return target


def _child(node: Any, part: str, item: str, option: str) -> Any:
    """The section `part` of `node`, created when missing."""
    if isinstance(node, list):
        return node[_index(node, part, item, option)]
    if not isinstance(node, dict):
        raise RecipeError(f"{option} {item!r}: {part!r} is inside a value, not a section")
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def _index(node: list, part: str, item: str, option: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"{option} {item!r}: {part!r} is not an index of a list of {len(node)} items")
    return int(part)

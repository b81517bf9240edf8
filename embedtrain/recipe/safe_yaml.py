"""YAML from users (recipe files, `--set` values), read with limits: plain data only, of a bounded size.

`yaml.safe_load` already refuses to run code, but it still lets a few hundred bytes of anchors and aliases
(`&a [*b, *b, ...]`) stand for billions of values: PyYAML shares the aliased objects, and the first walk that
follows them (line numbers, validation, `model_dump`) never ends. So the document is composed into nodes
first, its size is counted with every alias expanded (each distinct node counted once, so the count itself
stays linear), and only a document within the limits is turned into Python objects.
"""

from typing import Any

import yaml

from embedtrain.errors import RecipeError

MAX_CHARACTERS = 1_000_000  # real recipes are a few kilobytes
MAX_VALUES = 100_000  # keys, values and list items after alias expansion; real recipes have a few hundred

# The tags of plain data (what JSON holds), plus the merge key (`<<: *defaults`) and dates, which YAML
# resolves on its own from `2024-01-01`. Anything else (`!!python/object`, `!!binary`, `!!set`, `!custom`)
# is refused before construction, with its line, rather than failing in the constructor.
PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in
                       ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp"))


def parse_yaml(text: str, where: str) -> tuple[Any, yaml.Node | None]:
    """The data of the single YAML document `text` and its node tree (for line numbers).

    `where` starts every error message (a file name, or the command-line option). Raises RecipeError for a
    document past the limits or with a tag outside plain data, and yaml.YAMLError for invalid YAML.
    """
    if len(text) > MAX_CHARACTERS:
        raise RecipeError(f"{where}: {len(text):,} characters is too large for a recipe (at most {MAX_CHARACTERS:,}); "
                          f"is this really a recipe? Data belongs in the files that datasets.*.source names")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_node_tree(node, where)
        return loader.construct_document(node), node
    except RecursionError:
        raise RecipeError(f"{where}: the YAML is nested too deeply to be a recipe") from None
    finally:
        loader.dispose()


def _check_node_tree(root: yaml.Node, where: str) -> None:
    """RecipeError for a tag outside plain data, a collection used as a key, a node that contains itself (an
    alias inside its own anchor) or more than MAX_VALUES values once the aliases are expanded."""
    expanded_sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded; a node is counted once
    open_nodes: set[int] = set()

    def expanded_size(node: yaml.Node) -> int:
        if id(node) in expanded_sizes:
            return expanded_sizes[id(node)]
        line = node.start_mark.line + 1
        if id(node) in open_nodes:
            raise RecipeError(f"{where}:{line}: an alias refers to the anchor that contains it (a recursive "
                              f"structure); a recipe is a tree: write the value out")
        _check_tag(node, where)
        open_nodes.add(id(node))
        size = 1
        for child in _children(node, where):
            size += expanded_size(child)
            if size > MAX_VALUES:
                raise RecipeError(f"{where}:{line}: the YAML expands to more than {MAX_VALUES:,} values through "
                                  f"its anchors and aliases (&name, *name); a recipe is far smaller: use fewer "
                                  f"aliases, or write the values out")
        open_nodes.discard(id(node))
        expanded_sizes[id(node)] = size
        return size

    expanded_size(root)


def _check_tag(node: yaml.Node, where: str) -> None:
    if node.tag not in PLAIN_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise RecipeError(f"{where}:{node.start_mark.line + 1}: the YAML tag {tag} is not allowed: a recipe holds "
                          f"plain data only (mappings, lists, strings, numbers, booleans, null); remove the tag")


def _children(node: yaml.Node, where: str) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.CollectionNode):
                raise RecipeError(f"{where}:{key_node.start_mark.line + 1}: a mapping key must be a plain value "
                                  f"(a name), not a list or a mapping")
        return [child for pair in node.value for child in pair]
    return []

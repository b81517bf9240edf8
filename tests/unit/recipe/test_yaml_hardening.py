"""Hostile or broken YAML in a recipe (or a `--set` value) is a RecipeError naming the file and line, at once.

Proven here:
- a "billion laughs" recipe (a few hundred bytes of anchors and aliases that expand exponentially) is refused
  within seconds, as is a `--set` value built the same way, a recursive alias, a document past the size
  limit and one nested too deeply;
- ordinary anchors, aliases and merge keys still load;
- a tag outside plain data (`!!python/object/apply`, `!!binary`, a custom `!tag`) is refused with its line and
  is never constructed (the code it names does not run);
- a duplicate key in a flow mapping is refused too (block mappings: test_recipe.py).
"""

import signal
from contextlib import contextmanager

import pytest
from helpers.recipes import MINIMAL, recipe_error, write

from embedtrain.recipe.loading import load_recipe
from embedtrain.recipe.safe_yaml import MAX_CHARACTERS


@contextmanager
def deadline(seconds: int):
    """Fail the test instead of hanging when loading does not answer (as it did for a billion laughs)."""
    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def billion_laughs(levels: int = 9) -> str:
    """Each level is a list of nine aliases of the one before: 9**levels strings from ~500 bytes."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        previous = f"*l{level - 1}"
        lines.append(f"l{level}: &l{level} [{', '.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_recipe_is_refused_quickly(tmp_path):
    path = write(tmp_path, MINIMAL + billion_laughs())
    assert path.stat().st_size < 1000

    with deadline(30):
        error = recipe_error(path)

    assert error.startswith(f"{path}:")
    assert "the YAML expands to more than 100,000 values through its anchors and aliases" in error


def test_billion_laughs_in_a_set_value_is_refused_quickly(tmp_path):
    path = write(tmp_path, MINIMAL)
    levels = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&l{level} [{', '.join([f'*l{level - 1}'] * 9)}]" for level in range(1, 9)]
    value = f"[{', '.join(levels)}]"

    with deadline(30):
        error = recipe_error(path, [f"model.prompts={value}"])

    assert error.startswith("--set 'model.prompts=")
    assert "expands to more than 100,000 values" in error


def test_ordinary_anchors_aliases_and_merge_keys_still_load(tmp_path):
    text = MINIMAL.replace("      source: data/sts.csv", "      source: &sts data/sts.csv")
    text = text.replace("    source: data/sts.csv", "    source: *sts")
    text = text.replace("    type: CoSENTLoss", "    <<: &cosent {type: CoSENTLoss}\n    scale: 10")
    recipe = load_recipe(write(tmp_path, text))

    assert recipe.evaluators[0].source == "data/sts.csv"
    assert recipe.losses["cosent"].scale == 10


def test_recursive_alias_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + "extra: &loop [1, *loop]\n")

    error = recipe_error(path)

    assert error.startswith(f"{path}:16: an alias refers to the anchor that contains it (a recursive structure)")


def test_document_past_the_size_limit_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + "# " + "x" * MAX_CHARACTERS + "\n")

    error = recipe_error(path)

    assert error.startswith(f"{path}: 1,000,")
    assert "characters is too large for a recipe (at most 1,000,000)" in error


def test_deeply_nested_yaml_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + "extra: " + "[" * 5000 + "]" * 5000 + "\n")

    assert recipe_error(path) == f"{path}: the YAML is nested too deeply to be a recipe"


def test_python_object_tag_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "executed"
    text = MINIMAL.replace("  base: tiny-bert",
                           f"  base: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]")
    path = write(tmp_path, text)

    error = recipe_error(path)

    assert error.startswith(f"{path}:2: the YAML tag !!python/object/apply:pathlib.Path.touch is not allowed: "
                            "a recipe holds plain data only")
    assert not marker.exists()


@pytest.mark.parametrize(("value", "tag"), [("!!binary aGVsbG8=", "!!binary"), ("!custom tiny-bert", "!custom"),
                                            ("!!set {a, b}", "!!set")])
def test_tags_outside_plain_data_are_refused(tmp_path, value, tag):
    path = write(tmp_path, MINIMAL.replace("  base: tiny-bert", f"  base: {value}"))

    assert recipe_error(path).startswith(f"{path}:2: the YAML tag {tag} is not allowed")


def test_collection_as_a_mapping_key_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + "? [a, b]\n: c\n")

    assert recipe_error(path).startswith(f"{path}:16: a mapping key must be a plain value")


def test_duplicate_key_in_a_flow_mapping_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL.replace("    type: CoSENTLoss", "    {type: CoSENTLoss, type: CoSENTLoss}"))

    assert recipe_error(path).startswith(f"{path}:5: losses.cosent.type: duplicate key")

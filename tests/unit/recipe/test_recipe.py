"""Recipe loading: YAML -> `--set` overrides -> a frozen, validated Recipe, or one RecipeError listing every problem.

Proven here:
- a minimal recipe loads with its defaults, is frozen, and `dump_recipe` output loads back to an equal Recipe;
- each kind of mistake (unknown key with did-you-mean at every level, wrong type, out-of-range value,
  unknown loss/evaluator type, missing section, cross-references between datasets, losses, evaluators
  and training) raises RecipeError naming the file, the line and the key path, and several mistakes are
  reported together;
- unreadable recipes (bad YAML with line:column, not a mapping, duplicate keys, not UTF-8, missing)
  raise RecipeError naming the file;
- `--set KEY.PATH=VALUE` overrides parse the value as YAML, create missing sections, index lists, and
  malformed overrides raise RecipeError.
"""

import pytest
import yaml
from helpers.recipes import MINIMAL, recipe_error, write
from pydantic import ValidationError

from embedtrain.models.config import DenseConfig
from embedtrain.recipe.loading import dump_recipe, load_recipe
from embedtrain.recipe.overrides import apply_override
from embedtrain.recipe.schema import Recipe

FULL = """\
model:
  base: tiny-bert
  pooling: [mean, max]
  dense: {out_features: 16, activation: identity}
  normalize: true
  max_seq_length: 32
  prompts: {query: "query: ", document: ""}
  default_prompt_name: query
  similarity_fn_name: dot
  card: {language: [en], tags: [sts]}
losses:
  cosent:
    type: CoSENTLoss
    scale: 10
  mnrl:
    type: MultipleNegativesRankingLoss
datasets:
  train:
    sts: {source: data/sts.csv, loss: cosent, max_samples: 100, shuffle_seed: 3}
    triplets:
      source: data/triplets.csv
      loss: mnrl
      columns: {anchor: anchor, positive: positive, negative: [negative]}
  eval:
    sts: {source: data/sts.csv, loss: cosent}
evaluators:
  - {type: sts, name: sts-dev, source: data/sts.csv, similarity_fn_names: [cosine, dot]}
  - {type: triplet, name: triplets, source: data/triplets.csv}
training:
  output_dir: runs/out
  epochs: 2
  batch_size: 8
  learning_rate: 1.0e-4
  adam_betas: [0.8, 0.95]
  warmup_steps: 5
  eval_steps: 10
  save_steps: 20
  metric_for_best_model: sts-dev_spearman_max
  load_best_model_at_end: true
"""


# Valid recipes


def test_minimal_recipe_loads_with_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))

    assert isinstance(recipe, Recipe)
    assert recipe.model.base == "tiny-bert"
    assert recipe.model.pooling is None and recipe.model.normalize is None
    assert recipe.losses["cosent"].type == "CoSENTLoss"
    assert recipe.datasets.train["sts"].source == "data/sts.csv"
    assert recipe.loss_name_for(recipe.datasets.train["sts"]) == "cosent"
    assert recipe.evaluators[0].name == "sts-dev"
    assert recipe.training.batch_size == 16
    assert recipe.training.learning_rate == 2e-5
    assert recipe.metric_names() == ["sts-dev_pearson_cosine", "sts-dev_spearman_cosine"]


def test_full_recipe_loads(tmp_path):
    recipe = load_recipe(write(tmp_path, FULL))

    assert recipe.model.pooling == ["mean", "max"]
    assert recipe.model.dense == DenseConfig(out_features=16, activation="identity")
    assert recipe.model.prompts == {"query": "query: ", "document": ""}
    assert recipe.losses["cosent"].scale == 10.0
    assert recipe.datasets.train["triplets"].columns == {"anchor": "anchor", "positive": "positive",
                                                         "negative": ["negative"]}
    assert recipe.training.adam_betas == (0.8, 0.95)
    assert recipe.training.metric_for_best_model in recipe.metric_names()
    assert "eval_sts_loss" in recipe.metric_names()


@pytest.mark.parametrize(("section", "key", "value"), [
    ("training", "batch_size", 4),
    ("model", "base", "other"),
    ("datasets", "eval", {}),
])
def test_recipe_is_frozen(tmp_path, section, key, value):
    recipe = load_recipe(write(tmp_path, MINIMAL))

    with pytest.raises(ValidationError, match="frozen"):
        setattr(getattr(recipe, section), key, value)
    with pytest.raises(ValidationError, match="frozen"):
        setattr(recipe, section, None)


@pytest.mark.parametrize("text", [MINIMAL, FULL], ids=["minimal", "full"])
def test_dump_recipe_round_trips(tmp_path, text):
    recipe = load_recipe(write(tmp_path, text))

    dumped = dump_recipe(recipe)
    reloaded = load_recipe(write(tmp_path, dumped, "resolved.yaml"))

    assert reloaded == recipe
    assert dump_recipe(reloaded) == dumped
    assert yaml.safe_load(dumped)["training"]["batch_size"] == recipe.training.batch_size  # defaults are written out


# Invalid recipes: each problem names the file, the line and the key path


def after(anchor: str, lines: str) -> str:
    """MINIMAL with `lines` inserted after the first line that is `anchor`."""
    assert anchor in MINIMAL.splitlines()
    return MINIMAL.replace(anchor + "\n", anchor + "\n" + lines, 1)


def replaced(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new, 1)


INVALID = {
    # unknown keys, with a did-you-mean at every level
    "unknown top-level key": (MINIMAL + "trainng:\n  epochs: 2\n", 16, "trainng", "unknown key (did you mean 'training'?)"),
    "unknown model key": (after("  base: tiny-bert", "  poling: mean\n"), 3, "model.poling", "did you mean 'pooling'?"),
    "unknown loss parameter": (after("    type: CoSENTLoss", "    scael: 10\n"), 6, "losses.cosent.scael",
                               "did you mean 'scale'?"),
    "unknown training key": (MINIMAL + "  learning_rat: 1.0e-5\n", 16, "training.learning_rat",
                             "did you mean 'learning_rate'?"),
    "unknown dataset key": (after("      source: data/sts.csv", "      colums: {a: b}\n"), 10, "datasets.train.sts.colums",
                            "did you mean 'columns'?"),
    "unknown evaluator key": (after("    name: sts-dev", "    batchsize: 8\n"), 13, "evaluators[0].batchsize",
                              "did you mean 'batch_size'?"),
    "unknown key, no close match": (MINIMAL + "  zzz: 1\n", 16, "training.zzz", "allowed keys: output_dir, epochs"),
    # wrong types and values
    "string for int": (MINIMAL + "  epochs: many\n", 16, "training.epochs", "valid integer"),
    "string for bool": (after("  base: tiny-bert", "  normalize: maybe\n"), 3, "model.normalize", "valid boolean"),
    "list for int": (MINIMAL + "  batch_size: [8]\n", 16, "training.batch_size", "valid integer"),
    "mapping for section": (replaced("  output_dir: runs/out\n", "  output_dir: {a: 1}\n"), 15, "training.output_dir",
                            "valid string"),
    "negative batch size": (MINIMAL + "  batch_size: -4\n", 16, "training.batch_size", "greater than 0 (got -4)"),
    "zero loss scale": (after("    type: CoSENTLoss", "    scale: 0\n"), 6, "losses.cosent.scale", "greater than 0"),
    "unknown pooling mode": (after("  base: tiny-bert", "  pooling: avg\n"), 3, "model.pooling",
                             "Input should be 'cls', 'max', 'mean'"),
    # unknown or missing discriminators
    "unknown loss type": (replaced("type: CoSENTLoss", "type: CoSentLoss"), 4, "losses.cosent",
                          "unknown type 'CoSentLoss' (did you mean 'CoSENTLoss'?)"),
    "unknown evaluator type": (replaced("- type: sts", "- type: stss"), 11, "evaluators[0]",
                               "unknown type 'stss' (did you mean 'sts'?)"),
    "loss without type": (replaced("    type: CoSENTLoss", "    scale: 10"), 4, "losses.cosent", "type"),
    # missing sections and keys
    "missing training section": (MINIMAL.split("training:")[0], None, "training", "required key is missing"),
    "missing model section": (MINIMAL.replace("model:\n  base: tiny-bert\n", ""), None, "model", "required key is missing"),
    "missing model.base": (replaced("  base: tiny-bert", "  normalize: true"), 1, "model.base", "required key is missing"),
    "missing output_dir": (replaced("  output_dir: runs/out", "  epochs: 1"), 14, "training.output_dir",
                           "required key is missing"),
    "no losses": (replaced("losses:\n  cosent:\n    type: CoSENTLoss\n", "losses: {}\n"), 3, "losses", "at least 1"),
    # cross-references
    "dataset refers to an undefined loss": (after("      source: data/sts.csv", "      loss: cosnet\n"), 10,
                                            "datasets.train.sts.loss",
                                            "'cosnet' is not defined in losses (cosent) (did you mean 'cosent'?)"),
    "several losses, dataset without loss": (
        after("    type: CoSENTLoss", "  mnrl:\n    type: MultipleNegativesRankingLoss\n"), 10,
        "datasets.train.sts", "`loss:` is required when several losses are defined"),
    "metric not produced by the evaluators": (MINIMAL + "  metric_for_best_model: sts-dev_spearman_cosin\n", 16,
                                              "training.metric_for_best_model",
                                              "(did you mean 'sts-dev_spearman_cosine'?)"),
    "load_best_model_at_end without metric": (MINIMAL + "  load_best_model_at_end: true\n", 14, "training",
                                              "load_best_model_at_end needs metric_for_best_model"),
    "warmup_ratio and warmup_steps": (MINIMAL + "  warmup_ratio: 0.1\n  warmup_steps: 10\n", 14, "training",
                                      "set warmup_ratio or warmup_steps, not both"),
    "default prompt not defined": (after("  base: tiny-bert", "  default_prompt_name: query\n"), 1, "model",
                                   "default_prompt_name 'query' is not a key of prompts"),
}


@pytest.mark.parametrize(("text", "line", "key", "message"), INVALID.values(), ids=INVALID.keys())
def test_invalid_recipe_names_file_line_and_key(tmp_path, text, line, key, message):
    path = write(tmp_path, text)

    error = recipe_error(path)

    location = f"{path}:{line}: {key}: " if line else f"{path}: {key}: "
    assert location in error
    assert message in error.split(location, 1)[1].splitlines()[0]


def test_all_problems_are_reported_at_once(tmp_path):
    text = after("  base: tiny-bert", "  poling: mean\n") + "  batch_size: -1\n"
    text = text.replace("    type: CoSENTLoss\n", "    type: CoSENTLoss\n    scale: nope\n")
    path = write(tmp_path, text)

    error = recipe_error(path)

    expected = [f"{path}:3: model.poling: unknown key (did you mean 'pooling'?)",
                f"{path}:7: losses.cosent.scale: Input should be a valid number",
                f"{path}:18: training.batch_size: Input should be greater than 0"]
    lines = error.splitlines()
    assert lines[0] == f"{path}: 3 problems in the recipe:"
    assert len(lines) == 4
    for line, problem in zip(lines[1:], expected):  # in file order
        assert line.strip().startswith(problem)


# Unreadable recipes

UNREADABLE = {
    "mapping value where none is allowed": ("model:\n  base: a: b\n", ":2:10: invalid YAML: mapping values are not allowed"),
    "unclosed flow mapping": ("model: {base: x\n", ":2:1: invalid YAML: expected ',' or '}'"),
    "tab indentation": (MINIMAL.replace("  output_dir", "\toutput_dir"), ":15:1: invalid YAML: found character '\\t'"),
    "top level is a list": ("- model\n- losses\n", ": a recipe is a mapping of sections"),
    "top level is a scalar": ("42\n", ": a recipe is a mapping of sections"),
    "empty file": ("", ": a recipe is a mapping of sections"),
    "duplicate top-level key": (MINIMAL + "model:\n  base: other\n", ":16: model: duplicate key"),
    "duplicate nested key": (MINIMAL + "  epochs: 1\n  epochs: 2\n", ":17: training.epochs: duplicate key"),
    "duplicate key in a list item": (after("    name: sts-dev", "    name: other\n"), ":13: evaluators[0].name: duplicate key"),
}


@pytest.mark.parametrize(("text", "message"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_recipe_raises_recipe_error_naming_the_file(tmp_path, text, message):
    path = write(tmp_path, text)

    assert recipe_error(path).startswith(f"{path}{message}")


def test_non_utf8_recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"model:\n  base: caf\xe9\n")

    assert recipe_error(path).startswith(f"{path}: not UTF-8 text (byte 18)")


def test_missing_recipe_file(tmp_path):
    path = tmp_path / "no-such-recipe.yaml"

    assert recipe_error(path) == f"{path}: recipe file not found"


def test_directory_instead_of_recipe_file(tmp_path):
    assert recipe_error(tmp_path).startswith(f"{tmp_path}: cannot read the recipe")


# --set overrides


def get(recipe: Recipe, dotted: str):
    node = recipe
    for part in dotted.split("."):
        node = node[int(part)] if part.isdigit() else node[part] if isinstance(node, dict) else getattr(node, part)
    return node


OVERRIDES = {
    "float": ("training.learning_rate=1e-5", "training.learning_rate", 1e-5),
    "int": ("training.batch_size=8", "training.batch_size", 8),
    "bool": ("training.eval_before_training=false", "training.eval_before_training", False),
    "null": ("training.max_grad_norm=null", "training.max_grad_norm", None),
    "list": ("model.card.tags=[a, b]", "model.card.tags", ["a", "b"]),
    "tuple from list": ("training.adam_betas=[0.8, 0.95]", "training.adam_betas", (0.8, 0.95)),
    "quoted string": ("model.prompts.query='query: '", "model.prompts", {"query": "query: "}),
    "string with =": ("training.output_dir=runs/a=b", "training.output_dir", "runs/a=b"),
    "list index": ("evaluators.0.batch_size=8", "evaluators.0.batch_size", 8),
    "loss parameter": ("losses.cosent.scale=5", "losses.cosent.scale", 5.0),
    "missing section created": ("model.dense.out_features=16", "model.dense", DenseConfig(out_features=16)),
    "missing nested sections created": ("datasets.eval.dev.source=dev.csv", "datasets.eval.dev.source", "dev.csv"),
}


@pytest.mark.parametrize(("override", "dotted", "expected"), OVERRIDES.values(), ids=OVERRIDES.keys())
def test_override_sets_a_yaml_parsed_value(tmp_path, override, dotted, expected):
    recipe = load_recipe(write(tmp_path, MINIMAL), [override])

    value = get(recipe, dotted)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3), ("0.5", 0.5), ("true", True), ("no", False), ("null", None), ("~", None), ("[1, x]", [1, "x"]),
    ("{a: 1}", {"a": 1}), ("text", "text"), ("'3'", "3"), ("", ""),
])
def test_override_value_is_parsed_as_yaml(value, expected):
    raw = {"section": {}}

    apply_override(raw, f"section.key={value}")

    assert raw["section"]["key"] == expected
    assert type(raw["section"]["key"]) is type(expected)


def test_later_override_wins(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL), ["training.batch_size=8", "training.batch_size=4"])

    assert recipe.training.batch_size == 4


def test_override_does_not_touch_other_keys(tmp_path):
    recipe = load_recipe(write(tmp_path, FULL), ["model.dense.out_features=8"])

    assert recipe.model.dense == DenseConfig(out_features=8, activation="identity")


@pytest.mark.parametrize(("override", "message"), [
    ("nokey", "expected KEY.PATH=VALUE"),
    ("=1", "expected KEY.PATH=VALUE"),
    ("training.output_dir.name=x", "training.output_dir is a value, not a section"),
    ("training.output_dir.a.b=x", "'a' is inside a value, not a section"),
    ("evaluators.3.batch_size=8", "'3' is not an index of a list of 1 items"),
    ("evaluators.first.batch_size=8", "'first' is not an index of a list of 1 items"),
    ("training.batch_size=[8", "the value is not valid YAML"),
])
def test_malformed_override_raises_recipe_error(tmp_path, override, message):
    error = recipe_error(write(tmp_path, MINIMAL), [override])

    assert error.startswith(f"--set {override!r}: ")
    assert message in error


@pytest.mark.parametrize(("override", "problem"), [
    ("training.batch_size=-1", "training.batch_size: Input should be greater than 0"),
    ("training.batchsize=8", "training.batchsize: unknown key (did you mean 'batch_size'?)"),
    ("losses.cosent.type=CoSENT", "losses.cosent: unknown type 'CoSENT'"),
])
def test_invalid_override_value_is_reported_like_a_recipe_problem(tmp_path, override, problem):
    path = write(tmp_path, MINIMAL)

    error = recipe_error(path, [override])

    assert error.startswith(f"{path}: 1 problem in the recipe:")
    assert problem in error

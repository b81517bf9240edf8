"""The command line's shared syntaxes: one KEY=VALUE parser (`--set`, `--loss-option`) with YAML values and
dotted keys, and one `--columns INPUT=COLUMN,...` for `validate-dataset` and `eval`; a malformed item exits 2
with a message naming the option and the expected syntax."""

import json

import pytest
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.commands.columns import parse_columns
from embedtrain.commands.eval import EvalRequest, evaluator_params
from embedtrain.commands.validate import ValidationRequest, run_validation
from embedtrain.errors import ExitCode, RecipeError
from embedtrain.recipe.overrides import parse_overrides

runner = CliRunner()


@pytest.mark.parametrize(("item", "expected"), [
    ("n=3", {"n": 3}),
    ("scale=0.5", {"scale": 0.5}),
    ("normalize=true", {"normalize": True}),
    ("teacher=null", {"teacher": None}),
    ("similarity_fn_names=[cosine,dot]", {"similarity_fn_names": ["cosine", "dot"]}),
    ("name='3'", {"name": "3"}),
    ("path=runs/a=b", {"path": "runs/a=b"}),
    ("loss.type=MultipleNegativesRankingLoss", {"loss": {"type": "MultipleNegativesRankingLoss"}}),
    ("a.b.c=1", {"a": {"b": {"c": 1}}}),
])
def test_key_values_are_yaml_typed_and_dotted_keys_nest(item, expected):
    assert parse_overrides([item], "--set") == expected


def test_later_key_value_wins_and_siblings_merge():
    assert parse_overrides(["a.x=1", "a.y=2", "a.x=3"], "--loss-option") == {"a": {"x": 3, "y": 2}}


@pytest.mark.parametrize(("item", "message"), [
    ("nokey", "expected KEY.PATH=VALUE"),
    ("=1", "expected KEY.PATH=VALUE"),
    ("a=[1", "the value is not valid YAML"),
])
@pytest.mark.parametrize("option", ["--set", "--loss-option"])
def test_malformed_key_value_names_its_option(option, item, message):
    with pytest.raises(RecipeError) as error:
        parse_overrides([item], option)
    assert str(error.value).startswith(f"{option} {item!r}: ")
    assert message in str(error.value)


@pytest.mark.parametrize(("arguments", "message"), [
    (["train", "recipe.yaml", "--set", "training.epochs"], "--set 'training.epochs': expected KEY.PATH=VALUE"),
    (["validate-dataset", "recipe.yaml", "--set", "epochs"], "--set 'epochs': expected KEY.PATH=VALUE"),
    (["validate-dataset", "--data", "x.csv", "--loss", "SoftmaxLoss", "--loss-option", "num_labels"],
     "--loss-option 'num_labels': expected KEY.PATH=VALUE"),
    (["validate-dataset", "--data", "x.csv", "--loss", "CoSENTLoss", "--columns", "sentence1"],
     "--columns 'sentence1': expected INPUT=COLUMN"),
    (["eval", "model", "--evaluator", "sts=x.csv", "--set", "batch_size"],
     "--set 'batch_size': expected KEY.PATH=VALUE"),
    (["eval", "model", "--evaluator", "sts=x.csv", "--columns", "sentence1=a,sentence2"],
     "--columns 'sentence2': expected INPUT=COLUMN"),
    (["eval", "model", "--evaluator", "sts=x.csv", "--fail-under", "sts_spearman_cosine"],
     "--fail-under 'sts_spearman_cosine': expected METRIC=VALUE"),
], ids=["train-set", "validate-set", "loss-option", "validate-columns", "eval-set", "eval-columns", "fail-under"])
def test_bad_syntax_exits_2_naming_the_option(tmp_path, arguments, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: {base: m}\n", encoding="utf-8")
    arguments = [str(recipe) if argument == "recipe.yaml" else argument for argument in arguments]
    result = runner.invoke(app, arguments)
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_loss_options_reach_the_loss_typed(tmp_path):
    data = tmp_path / "nli.csv"
    data.write_text("premise,hypothesis,label\n" + "".join(f"text {i},other {i},{i % 3}\n" for i in range(9)))

    def errors(*options: str) -> list[str]:
        request = ValidationRequest(data=str(data), loss="SoftmaxLoss", loss_options=list(options))
        return run_validation(request).reports[0].errors

    assert errors("num_labels=3") == []
    assert errors("num_labels=2") and "num_labels" in errors("num_labels=2")[0]


@pytest.mark.parametrize(("text", "expected"), [
    ("anchor=q,positive=p", {"anchor": "q", "positive": "p"}),
    ("anchor=q, positive=p,", {"anchor": "q", "positive": "p"}),
    ("anchor=q,positive=p,negative=n1,negative=n2", {"anchor": "q", "positive": "p", "negative": ["n1", "n2"]}),
    ("sentence1=a,sentence2=b,label=y", {"sentence1": "a", "sentence2": "b", "label": "y"}),
])
def test_columns_syntax(text, expected):
    assert parse_columns(text) == expected


@pytest.mark.parametrize("text", ["anchor", "anchor=", "=q"])
def test_malformed_columns(text):
    with pytest.raises(RecipeError, match=r"^--columns .*: expected INPUT=COLUMN"):
        parse_columns(text)


def test_eval_reads_columns_as_validate_dataset_does():
    text = "anchor=q,positive=p,negative=n1,negative=n2"
    [params] = evaluator_params(EvalRequest(["triplet=x.csv"], [], columns=text))
    assert params.columns == parse_columns(text) == {"anchor": "q", "positive": "p", "negative": ["n1", "n2"]}


def test_the_same_columns_work_in_both_commands(tmp_path, tiny_checkpoint):
    data = tmp_path / "triplets.csv"
    data.write_text("q,p,n,y\n" + "".join(f"question {i},answer {i},wrong {i},{i % 2}\n" for i in range(8)))
    columns = ["--columns", "anchor=q,positive=p,negative=n", "--split", "train"]
    validated = runner.invoke(app, ["validate-dataset", "--data", str(data), "--loss", "TripletLoss", "--json",
                                    *columns])
    evaluated = runner.invoke(app, ["eval", str(tiny_checkpoint), "--evaluator", "triplet", "--data", str(data),
                                    *columns])
    # The unmapped column y is the same error in both: neither mapped nor ignored.
    assert validated.exit_code == evaluated.exit_code == ExitCode.DATA_ERROR, (validated.output, evaluated.output)
    [error] = json.loads(validated.stdout)["datasets"][0]["errors"]
    assert "['y']" in error and "['y']" in evaluated.output


def test_repeated_input_columns_in_validate_dataset(tmp_path):
    data = tmp_path / "hard.csv"
    data.write_text("q,p,n1,n2\n" + "".join(f"question {i},answer {i},wrong {i},other {i}\n" for i in range(8)))
    validation = run_validation(ValidationRequest(data=str(data), loss="MultipleNegativesRankingLoss",
                                                  columns="anchor=q,positive=p,negative=n1,negative=n2"))
    assert not validation.failed, validation.reports[0].errors
    assert validation.reports[0].mapping.describe() == "anchor=q, positive=p, negative_1=n1, negative_2=n2"

"""Bad input of every kind is rejected before training: the documented exit code, a message that names the file,
key, column or row and the fix, no traceback, and nothing written.

Each case is run through `embedtrain train` and, for data problems, through `embedtrain validate-dataset` too.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from accelerate.state import AcceleratorState
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode

runner = CliRunner()
GOOD_PAIRS = "sentence1,sentence2,score\na man plays guitar,a man plays a guitar,0.9\na dog runs,a cat sits,0.1\n"


@dataclass
class Case:
    code: ExitCode
    fragments: list[str]
    files: dict[str, str | bytes]  # extra files written into the test folder
    change: Callable[[dict, Path], None] = lambda recipe, folder: None  # edits the recipe dict
    raw_recipe: str | bytes | None = None  # replaces the recipe file entirely


def base_recipe(folder: Path, model: Path) -> dict:
    return {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"pairs": {"source": str(folder / "train.csv")}}},
        "evaluators": [{"type": "sts", "name": "dev", "source": str(folder / "train.csv")}],
        "training": {"output_dir": str(folder / "run"), "max_steps": 2},
    }


def train_source(recipe: dict, source: str, **settings) -> None:
    recipe["datasets"]["train"]["pairs"] = {"source": source, **settings}


def set_loss(recipe: dict, loss: dict) -> None:
    recipe["losses"]["main"] = loss


CASES = {
    # -- the recipe itself (exit 2) --
    "malformed yaml": Case(ExitCode.INVALID_INPUT, ["recipe.yaml:3:1: invalid YAML", "while parsing a flow sequence at line 2"], {},
                           raw_recipe="model:\n  base: [unclosed\n"),
    "empty recipe": Case(ExitCode.INVALID_INPUT, ["a recipe is a mapping"], {}, raw_recipe=""),
    "recipe not utf-8": Case(ExitCode.INVALID_INPUT, ["not UTF-8"], {}, raw_recipe=b"model:\n  base: \xff\xfe\n"),
    "unknown top-level key": Case(ExitCode.INVALID_INPUT, ["evaluator: unknown key (did you mean 'evaluators'?)"], {},
                                  lambda r, f: r.update(evaluator=[])),
    "unknown training key": Case(ExitCode.INVALID_INPUT, ["training.lerning_rate: unknown key (did you mean"], {},
                                 lambda r, f: r["training"].update(lerning_rate=1e-5)),
    "wrong type": Case(ExitCode.INVALID_INPUT, ["training.batch_size", "valid integer"], {},
                       lambda r, f: r["training"].update(batch_size="sixteen")),
    "missing section": Case(ExitCode.INVALID_INPUT, ["losses: required key is missing"], {},
                            lambda r, f: r.pop("losses")),
    "unknown loss": Case(ExitCode.INVALID_INPUT, ["unknown type 'CosentLoss' (did you mean 'CoSENTLoss'?)"], {},
                         lambda r, f: set_loss(r, {"type": "CosentLoss"})),
    "loss parameter of the wrong type": Case(ExitCode.INVALID_INPUT, ["losses.main.scale"], {},
                                             lambda r, f: set_loss(r, {"type": "CoSENTLoss", "scale": "big"})),
    "loss options that contradict each other": Case(
        ExitCode.INVALID_INPUT, ["losses.main", "set at least one of the concatenation_sent_* options"], {},
        lambda r, f: set_loss(r, {"type": "SoftmaxLoss", "num_labels": 3, "concatenation_sent_rep": False,
                                  "concatenation_sent_difference": False})),
    "dataset names an undefined loss": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs.loss: 'mian'"], {},
                                            lambda r, f: r["datasets"]["train"]["pairs"].update(loss="mian")),
    "model directory missing": Case(ExitCode.INVALID_INPUT, ["model directory", "does not exist"], {},
                                    lambda r, f: r["model"].update(base=str(f / "no-model"))),
    # -- the data (exit 3) --
    "data file missing": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs.source", "does not exist"], {},
                              lambda r, f: train_source(r, str(f / "nope.csv"))),
    "unknown file format": Case(ExitCode.DATA_ERROR, ["cannot tell the format", ".xlsx"], {"data.xlsx": "x"},
                                lambda r, f: train_source(r, str(f / "data.xlsx"))),
    "empty file": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs.source", "is empty"], {"empty.csv": ""},
                       lambda r, f: train_source(r, str(f / "empty.csv"))),
    "header only": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: the dataset has no rows"],
                        {"header.csv": "sentence1,sentence2,score\n"}, lambda r, f: train_source(r, str(f / "header.csv"))),
    "undecodable bytes": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: cannot load"],
                              {"latin.csv": b"sentence1,sentence2,score\ncaf\xe9,x,0.5\n"},
                              lambda r, f: train_source(r, str(f / "latin.csv"))),
    "malformed jsonl": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: cannot load"],
                            {"bad.jsonl": '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": \n'},
                            lambda r, f: train_source(r, str(f / "bad.jsonl"))),
    "a folder without data files": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: cannot load"], {"folder/x.txt": ""},
                                        lambda r, f: train_source(r, str(f / "folder"))),
    "missing column, mapped": Case(ExitCode.DATA_ERROR, ["'sentence2' maps to column 'sentnce2'",
                                                         "did you mean 'sentence2'?"], {},
                                   lambda r, f: train_source(r, str(f / "train.csv"), columns={
                                       "sentence1": "sentence1", "sentence2": "sentnce2", "label": "score"})),
    "unknown input in mapping": Case(ExitCode.DATA_ERROR, ["'anchor' is not an input", "sentence1, sentence2, label"], {},
                                     lambda r, f: train_source(r, str(f / "train.csv"), columns={
                                         "anchor": "sentence1", "sentence2": "sentence2", "label": "score"})),
    "extra column": Case(ExitCode.DATA_ERROR, ["expected 2 text columns", "['id', 'sentence1', 'sentence2']"],
                         {"extra.csv": "id,sentence1,sentence2,score\n1,a,b,0.5\n"},
                         lambda r, f: train_source(r, str(f / "extra.csv"))),
    "extra column, mapped": Case(ExitCode.DATA_ERROR, ["columns ['id'] are neither mapped nor ignored"],
                                 {"extra.csv": "id,sentence1,sentence2,score\n1,a,b,0.5\n"},
                                 lambda r, f: train_source(r, str(f / "extra.csv"), columns={
                                     "sentence1": "sentence1", "sentence2": "sentence2", "label": "score"})),
    "too few columns": Case(ExitCode.DATA_ERROR, ["expected 2 text columns", "found 1"],
                            {"one.csv": "sentence1,score\na,0.5\n"}, lambda r, f: train_source(r, str(f / "one.csv"))),
    "misordered columns": Case(ExitCode.DATA_ERROR, ["column 'positive' would feed input 'anchor'"],
                               {"swapped.csv": "positive,anchor\na,b\nc,d\n"},
                               lambda r, f: (set_loss(r, {"type": "MultipleNegativesRankingLoss"}),
                                             train_source(r, str(f / "swapped.csv")))),
    "loss needs a label, data has none": Case(ExitCode.DATA_ERROR, ["needs a score label but the data has no column"],
                                              {"nolabel.csv": "sentence1,sentence2\na,b\n"},
                                              lambda r, f: train_source(r, str(f / "nolabel.csv"))),
    "label the loss would ignore": Case(ExitCode.DATA_ERROR, ["column 'score' looks like a label"], {},
                                        lambda r, f: set_loss(r, {"type": "MultipleNegativesRankingLoss"})),
    "missing text": Case(ExitCode.DATA_ERROR, ["column 'sentence2' (sentence2) has 1 missing values, at row 1"],
                         {"holes.csv": "sentence1,sentence2,score\na,b,0.5\nc,,0.2\n"},
                         lambda r, f: train_source(r, str(f / "holes.csv"))),
    "blank text": Case(ExitCode.DATA_ERROR, ["has 1 empty texts, at row 0"],
                       {"blank.jsonl": '{"sentence1": "  ", "sentence2": "b", "score": 0.5}\n'},
                       lambda r, f: train_source(r, str(f / "blank.jsonl"))),
    "numbers as text": Case(ExitCode.DATA_ERROR, ["column 'sentence1' (sentence1) must hold text, but its type is int64"],
                            {"numbers.csv": "sentence1,sentence2,score\n1,b,0.5\n2,c,0.4\n"},
                            lambda r, f: train_source(r, str(f / "numbers.csv"))),
    "text label": Case(ExitCode.DATA_ERROR, ["label column 'score' must be numeric"],
                       {"wordy.csv": "sentence1,sentence2,score\na,b,high\n"},
                       lambda r, f: train_source(r, str(f / "wordy.csv"))),
    "missing label": Case(ExitCode.DATA_ERROR, ["label column 'score' has 1 missing values, at row 0"],
                          {"nolab.csv": "sentence1,sentence2,score\na,b,\nc,d,0.5\n"},
                          lambda r, f: train_source(r, str(f / "nolab.csv"))),
    "class out of range": Case(ExitCode.DATA_ERROR, ["integers from 0 to 2 (num_labels is 3)", "at row 1"],
                               {"nli.csv": "sentence1,sentence2,label\na,b,0\nc,d,3\n"},
                               lambda r, f: (set_loss(r, {"type": "SoftmaxLoss", "num_labels": 3}),
                                             train_source(r, str(f / "nli.csv")))),
    "score outside the cosine's range": Case(ExitCode.DATA_ERROR, ["between -1.0 and 1.0", "at row 0"],
                                             {"big.csv": "sentence1,sentence2,score\na,b,4\nc,d,0.5\n"},
                                             lambda r, f: (set_loss(r, {"type": "CosineSimilarityLoss"}),
                                                           train_source(r, str(f / "big.csv")))),
    "evaluator data missing a column": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev)", "needs a score label"],
                                            {"unlabeled.csv": "sentence1,sentence2\na,b\n"},
                                            lambda r, f: r["evaluators"][0].update(source=str(f / "unlabeled.csv"))),
    "several problems at once": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: the dataset has no rows",
                                                           "evaluators[0] (dev): the loss/evaluator needs a score label"],
                                     {"unlabeled.csv": "sentence1,sentence2\na,b\n", "header.csv": "sentence1,sentence2,score\n"},
                                     lambda r, f: (r["evaluators"][0].update(source=str(f / "unlabeled.csv")),
                                                   train_source(r, str(f / "header.csv")))),
}


def write_case(case: Case, folder: Path, model: Path) -> Path:
    (folder / "train.csv").write_text(GOOD_PAIRS)
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    recipe_path = folder / "recipe.yaml"
    if case.raw_recipe is not None:
        raw = case.raw_recipe
        recipe_path.write_bytes(raw) if isinstance(raw, bytes) else recipe_path.write_text(raw)
    else:
        recipe = base_recipe(folder, model)
        case.change(recipe, folder)
        recipe_path.write_text(yaml.safe_dump(recipe))
    return recipe_path


@pytest.mark.parametrize("command", ["train", "validate-dataset"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_rejected_before_training(case, command, tmp_path, tiny_checkpoint):
    AcceleratorState._reset_state(reset_partial_state=True)
    recipe = write_case(case, tmp_path, tiny_checkpoint)
    # validate-dataset's panels wrap text in borders; its JSON report keeps every message on one line.
    result = runner.invoke(app, [command, str(recipe)] + (["--json"] if command == "validate-dataset" else []))
    assert result.exit_code == case.code, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    for fragment in case.fragments:
        assert fragment in output, output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "final").exists() and not (tmp_path / "run" / "checkpoints").exists()


def test_at_least_thirty_cases():
    assert len(CASES) >= 30


def test_validate_dataset_on_a_single_file_reports_json(tmp_path, tiny_checkpoint):
    path = tmp_path / "pairs.csv"
    path.write_text("question,answer,id\nwhat is it,a thing,1\nwhat is it,another,2\nwho,who,3\n")
    result = runner.invoke(app, ["validate-dataset", "--data", str(path), "--loss", "MultipleNegativesRankingLoss",
                                 "--columns", "anchor=question,positive=answer", "--model", str(tiny_checkpoint),
                                 "--json"])
    assert result.exit_code == ExitCode.DATA_ERROR, result.output  # the unmapped id column
    report = json.loads(result.stdout)["datasets"][0]
    assert "columns ['id'] are neither mapped nor ignored" in report["errors"][0]


def test_validate_dataset_strict_fails_on_warnings(tmp_path, tiny_checkpoint):
    path = tmp_path / "pairs.csv"
    path.write_text("anchor,positive\nwhat is it,a thing\nwhat is it,another\nwho,who\n")
    arguments = ["validate-dataset", "--data", str(path), "--loss", "MultipleNegativesRankingLoss",
                 "--model", str(tiny_checkpoint), "--json"]
    relaxed = runner.invoke(app, arguments)
    assert relaxed.exit_code == 0, relaxed.output
    report = json.loads(relaxed.stdout)["datasets"][0]
    assert any("anchor equal to the positive" in w for w in report["warnings"])
    assert report["token_lengths"]["anchor"]["maximum"] >= 3
    assert runner.invoke(app, arguments + ["--strict"]).exit_code == ExitCode.DATA_ERROR


@pytest.mark.parametrize("arguments, message", [
    ([], "give either a RECIPE or --data"),
    (["--data", "x.csv"], "--data needs --loss"),
    (["--data", "x.csv", "--loss", "MNRL"], "unknown loss 'MNRL'"),
    (["--data", "x.csv", "--loss", "SoftmaxLoss"], "invalid parameters for SoftmaxLoss"),
    (["--data", "x.csv", "--loss", "CoSENTLoss", "--columns", "sentence1"], "expected INPUT=COLUMN"),
])
def test_validate_dataset_argument_errors(arguments, message):
    result = runner.invoke(app, ["validate-dataset", *arguments])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert message in " ".join(result.output.split())

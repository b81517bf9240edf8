"""Bad input of every kind is rejected before training: the documented exit code, a message that names the file,
key, column or row and the fix, no traceback, and nothing written.

Each case states the commands it goes through: `embedtrain train` for all, `validate-dataset` for recipe and data
problems (it reads the same recipe, and the model's tokenizer), and `embedtrain eval` for evaluator data and model
folders (it is given the recipe's model and its first evaluator, as `--evaluator TYPE=SOURCE [--columns ...]`).
"""

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.state import AcceleratorState
from helpers.cross_encoder_predict import make_tiny_cross_encoder
from helpers.tiny_models import make_tiny_checkpoint
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode

runner = CliRunner()
GOOD_PAIRS = "sentence1,sentence2,score\na man plays guitar,a man plays a guitar,0.9\na dog runs,a cat sits,0.1\n"
MARKER = "pwned"  # what a recipe that smuggles in code tries to create

TRAIN, VALIDATE, EVAL = "train", "validate-dataset", "eval"
RECIPE = (TRAIN, VALIDATE)  # the recipe, its data and its overrides: both commands read them
ALL = (TRAIN, VALIDATE, EVAL)  # evaluator data, and a model path that is not a model: every command reads them
MODEL = (TRAIN, EVAL)  # what is inside a model folder: validate-dataset loads only the tokenizer
RUN = (TRAIN,)  # the output directory and --resume: training only


@dataclass
class Case:
    code: ExitCode
    fragments: list[str]
    files: dict[str, str | bytes]  # extra files written into the test folder
    change: Callable[[dict, Path], None] = lambda recipe, folder: None  # edits the recipe dict
    raw_recipe: str | bytes | Callable[[Path], str] | None = None  # replaces the recipe file entirely
    commands: tuple[str, ...] = RECIPE
    args: tuple[str, ...] | Callable[[Path], tuple[str, ...]] = ()  # more arguments of train and validate-dataset
    eval_fragments: list[str] | None = None  # what eval says instead of `fragments` (its own names for evaluators)
    recipe_name: str = "recipe.yaml"  # the recipe path given on the command line


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


def set_evaluator(recipe: dict, **fields) -> None:
    recipe["evaluators"][0].update(fields)


def set_model(recipe: dict, folder: Path, name: str) -> None:
    recipe["model"]["base"] = str(folder / name)


def cross_encoder_evaluator(recipe: dict, folder: Path, **fields) -> None:
    """A cross-encoder evaluator (`fields`) given to a tiny cross-encoder (a sequence-classification checkpoint), as
    `embedtrain eval` gets them: its data is read before the model."""
    make_tiny_cross_encoder(folder / "cross-encoder")
    set_model(recipe, folder, "cross-encoder")
    recipe["evaluators"][0] = {"name": "dev", **fields}


def damage_model(recipe: dict, folder: Path, name: str, files: dict[str, str]) -> None:
    """Use a copy of the recipe's model, with `files` written over it."""
    shutil.copytree(recipe["model"]["base"], folder / name)
    for file_name, content in files.items():
        (folder / name / file_name).write_text(content)
    set_model(recipe, folder, name)


def remote_config(recipe: dict) -> str:
    """The recipe's model's config.json, made to need custom code (auto_map to modules the folder does not have)."""
    config = json.loads((Path(recipe["model"]["base"]) / "config.json").read_text())
    return json.dumps(config | {"model_type": "xmodel", "auto_map": {"AutoConfig": "configuration_x.XConfig",
                                                                     "AutoModel": "modeling_x.XModel"}})


def modules_json(*types: str) -> str:
    return json.dumps([{"idx": i, "name": str(i), "path": "", "type": t} for i, t in enumerate(types)])


ST_TRANSFORMER = "sentence_transformers.models.Transformer"

MINE_PAIRS = ("question,answer\nwho plays the guitar,a man plays guitar\nwho reads,a child reads a book\n"
              "where is the cat,a cat sits\nwhat is the weather,it is raining today\n")


def mine_pairs(recipe: dict, folder: Path, loss: str = "MultipleNegativesRankingLoss", pairs: str = "pairs.csv",
               **mine) -> None:
    """Train `loss` on negatives mined by the recipe's model from `pairs` (MINE_PAIRS unless the case writes it)."""
    if not (folder / pairs).exists():
        (folder / pairs).write_text(MINE_PAIRS)
    set_loss(recipe, {"type": loss})
    train_source(recipe, str(folder / pairs), mine={"model": recipe["model"]["base"]} | mine)


CASES = {
    # -- YAML syntax (exit 2): file and line --
    "malformed yaml": Case(ExitCode.INVALID_INPUT, ["recipe.yaml:3:1: invalid YAML", "while parsing a flow sequence at line 2"], {},
                           raw_recipe="model:\n  base: [unclosed\n"),
    "tab indentation": Case(ExitCode.INVALID_INPUT, ["recipe.yaml:2:1: invalid YAML: found character '\\t' that cannot start any token"], {},
                            raw_recipe="model:\n\tbase: x\n"),
    "unclosed quote": Case(ExitCode.INVALID_INPUT, ["recipe.yaml:4:1: invalid YAML", "while scanning a quoted scalar at line 2"], {},
                           raw_recipe='model:\n  base: "x\nlosses: {}\n'),
    "duplicate key": Case(ExitCode.INVALID_INPUT, ["recipe.yaml:3: model: duplicate key"], {},
                          raw_recipe="model: {base: x}\nlosses: {}\nmodel: {base: y}\n"),
    "empty recipe": Case(ExitCode.INVALID_INPUT, ["recipe.yaml: a recipe is a mapping"], {}, raw_recipe=""),
    "a list instead of a mapping": Case(ExitCode.INVALID_INPUT, ["a recipe is a mapping", "got list"], {},
                                        raw_recipe="- model\n- losses\n"),
    "recipe not utf-8": Case(ExitCode.INVALID_INPUT, ["recipe.yaml: not UTF-8"], {}, raw_recipe=b"model:\n  base: \xff\xfe\n"),
    "recipe file missing": Case(ExitCode.INVALID_INPUT, ["missing.yaml: recipe file not found"], {}, recipe_name="missing.yaml"),
    "recipe is a folder": Case(ExitCode.INVALID_INPUT, ["folder.yaml: cannot read the recipe"], {"folder.yaml/x": ""},
                               recipe_name="folder.yaml"),
    # -- schema: types, ranges, unknown keys at every level, loss and evaluator options (exit 2) --
    "unknown top-level key": Case(ExitCode.INVALID_INPUT, ["evaluator: unknown key (did you mean 'evaluators'?)"], {},
                                  lambda r, f: r.update(evaluator=[])),
    "unknown model key": Case(ExitCode.INVALID_INPUT, ["model.pooling_mode: unknown key"], {},
                              lambda r, f: r["model"].update(pooling_mode="mean")),
    "unknown loss parameter": Case(ExitCode.INVALID_INPUT, ["losses.main.scael: unknown key (did you mean 'scale'?)"], {},
                                   lambda r, f: set_loss(r, {"type": "CoSENTLoss", "scael": 20})),
    "unknown datasets split": Case(ExitCode.INVALID_INPUT, ["datasets.test: unknown key"], {},
                                   lambda r, f: r["datasets"].update(test={})),
    "unknown dataset key": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs.colums: unknown key (did you mean 'columns'?)"], {},
                                lambda r, f: r["datasets"]["train"]["pairs"].update(colums={})),
    "unknown evaluator option": Case(ExitCode.INVALID_INPUT, ["evaluators[0].batchsize: unknown key (did you mean 'batch_size'?)"], {},
                                     lambda r, f: set_evaluator(r, batchsize=8)),
    "unknown training key": Case(ExitCode.INVALID_INPUT, ["training.lerning_rate: unknown key (did you mean"], {},
                                 lambda r, f: r["training"].update(lerning_rate=1e-5)),
    "wrong type": Case(ExitCode.INVALID_INPUT, ["training.batch_size", "valid integer"], {},
                       lambda r, f: r["training"].update(batch_size="sixteen")),
    "a section that is not a mapping": Case(ExitCode.INVALID_INPUT, ["training: Input should be a valid dictionary"], {},
                                            lambda r, f: r.update(training=[1, 2])),
    "value out of range": Case(ExitCode.INVALID_INPUT, ["training.learning_rate", "greater than 0"], {},
                               lambda r, f: r["training"].update(learning_rate=0)),
    "ratio out of range": Case(ExitCode.INVALID_INPUT, ["training.warmup_ratio", "less than 1"], {},
                               lambda r, f: r["training"].update(warmup_ratio=1.5)),
    "scheduler not one of the choices": Case(ExitCode.INVALID_INPUT, ["training.scheduler", "'linear', 'cosine' or 'constant'"], {},
                                             lambda r, f: r["training"].update(scheduler="cosin")),
    "options that exclude each other": Case(ExitCode.INVALID_INPUT, ["training", "set warmup_ratio or warmup_steps, not both"], {},
                                            lambda r, f: r["training"].update(warmup_ratio=0.1, warmup_steps=3)),
    "missing section": Case(ExitCode.INVALID_INPUT, ["losses: required key is missing"], {},
                            lambda r, f: r.pop("losses")),
    "missing output_dir": Case(ExitCode.INVALID_INPUT, ["training.output_dir: required key is missing"], {},
                               lambda r, f: r["training"].pop("output_dir")),
    "no training dataset": Case(ExitCode.INVALID_INPUT, ["datasets.train: Dictionary should have at least 1 item"], {},
                                lambda r, f: r["datasets"].update(train={})),
    "unknown loss": Case(ExitCode.INVALID_INPUT, ["unknown type 'CosentLoss' (did you mean 'CoSENTLoss'?)"], {},
                         lambda r, f: set_loss(r, {"type": "CosentLoss"})),
    "loss without a type": Case(ExitCode.INVALID_INPUT, ["losses.main: needs a `type:` key; known types:"], {},
                                lambda r, f: set_loss(r, {"scale": 20})),
    "unknown evaluator type": Case(ExitCode.INVALID_INPUT, ["evaluators[0]: unknown type 'stss' (did you mean 'sts'?)"], {},
                                   lambda r, f: set_evaluator(r, type="stss")),
    "loss parameter of the wrong type": Case(ExitCode.INVALID_INPUT, ["losses.main.scale"], {},
                                             lambda r, f: set_loss(r, {"type": "CoSENTLoss", "scale": "big"})),
    "loss option not one of the choices": Case(ExitCode.INVALID_INPUT, ["losses.main.similarity"], {},
                                               lambda r, f: set_loss(r, {"type": "MultipleNegativesRankingLoss",
                                                                         "similarity": "cosin"})),
    "loss options that contradict each other": Case(
        ExitCode.INVALID_INPUT, ["losses.main", "set at least one of the concatenation_sent_* options"], {},
        lambda r, f: set_loss(r, {"type": "SoftmaxLoss", "num_labels": 3, "concatenation_sent_rep": False,
                                  "concatenation_sent_difference": False})),
    "evaluator option of the wrong type": Case(ExitCode.INVALID_INPUT, ["evaluators[0].similarity_fn_names[0]", "(got 'cosin')"], {},
                                               lambda r, f: set_evaluator(r, similarity_fn_names=["cosin"])),
    "pooling not one of the choices": Case(ExitCode.INVALID_INPUT, ["model.pooling: Input should be 'cls'", "(got 'avg')"], {},
                                           lambda r, f: r["model"].update(pooling="avg")),
    # -- cross-references between sections (exit 2) --
    "dataset names an undefined loss": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs.loss: 'mian'"], {},
                                            lambda r, f: r["datasets"]["train"]["pairs"].update(loss="mian")),
    "several losses, dataset names none": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs: `loss:` is required"], {},
                                               lambda r, f: r["losses"].update(other={"type": "AnglELoss"})),
    "undefined prompt": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs.prompts", "not defined in model.prompts"], {},
                             lambda r, f: (r["model"].update(prompts={"query": "query: "}),
                                           r["datasets"]["train"]["pairs"].update(prompts="qeury"))),
    "group_by_label for a loss without a label": Case(ExitCode.INVALID_INPUT, [
        "training.batch_sampler: group_by_label groups rows by their label", "'main' (datasets.train.pairs) takes no label"], {},
        lambda r, f: (set_loss(r, {"type": "MultipleNegativesRankingLoss"}),
                      r["training"].update(batch_sampler="group_by_label", batch_size=4))),
    "prompt for an input the loss lacks": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs.prompts.anchor: 'anchor' is not an input"], {},
                                               lambda r, f: (r["model"].update(prompts={"query": "query: "}),
                                                             r["datasets"]["train"]["pairs"].update(prompts={"anchor": "query"}))),
    "metric_for_best_model typo": Case(ExitCode.INVALID_INPUT, ["training.metric_for_best_model: 'dev_spearman'",
                                                                "did you mean 'dev_spearman_cosine'"], {},
                                       lambda r, f: r["training"].update(metric_for_best_model="dev_spearman")),
    "best model at end without a metric": Case(ExitCode.INVALID_INPUT, ["load_best_model_at_end needs metric_for_best_model"], {},
                                               lambda r, f: r["training"].update(load_best_model_at_end=True)),
    "two evaluators with one name": Case(ExitCode.INVALID_INPUT, ["evaluators[1].name: 'dev' is already the name of evaluators[0]"], {},
                                         lambda r, f: r["evaluators"].append(dict(r["evaluators"][0]))),
    # -- a dataset's mine: step: its options at their line (exit 2), its pairs and its loss against the rows mining
    # writes before anything is mined (exit 3), its models and what mining finds when training starts --
    "mine: unknown option": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs.mine.rang_max: unknown key (did you "
                                                          "mean 'range_max'?)"], {},
                                 lambda r, f: mine_pairs(r, f, rang_max=10)),
    "mine: more negatives than the range holds": Case(
        ExitCode.INVALID_INPUT, ["datasets.train.pairs.mine: num_negatives (5) is larger than the 2 candidates "
                                 "between range_min (2) and range_max (4)"], {},
        lambda r, f: mine_pairs(r, f, num_negatives=5, range_min=2, range_max=4)),
    "mine: columns that map a negative": Case(
        ExitCode.INVALID_INPUT, ["datasets.train.pairs.columns.negative: 'negative': with `mine:`, `columns:` maps "
                                 "the pairs that are mined"], {},
        lambda r, f: (mine_pairs(r, f), r["datasets"]["train"]["pairs"].update(
            columns={"anchor": "question", "positive": "answer", "negative": "answer"}))),
    "mine: a streamed dataset": Case(ExitCode.INVALID_INPUT, ["datasets.train.pairs.streaming: mining reads the "
                                                              "whole dataset"], {},
                                     lambda r, f: (mine_pairs(r, f), r["datasets"]["train"]["pairs"].update(
                                         streaming=True))),
    "mine: rows that do not fit the loss": Case(
        ExitCode.DATA_ERROR, ["datasets.train.pairs.mine: loss 'main' (CoSENTLoss) takes sentence1, sentence2 + "
                              "score label, but mining writes triplet rows (question, answer, negative)",
                              "the formats that fit it: output_format: labeled-pair"], {},
        lambda r, f: mine_pairs(r, f, loss="CoSENTLoss")),
    "mine: labelled pairs without a positive": Case(
        ExitCode.DATA_ERROR, ["datasets.train.pairs: no query has a positive: none of the 2 rows has label 1"],
        {"negatives.csv": "question,answer,label\nwho,a man,0\nwhere,a dog,0\n"},
        lambda r, f: mine_pairs(r, f, pairs="negatives.csv")),
    "mine: a corpus of several columns": Case(
        ExitCode.DATA_ERROR, ["datasets.train.pairs.mine.corpus: the corpus has columns ['id', 'text']; name the one "
                              "holding the texts with datasets.train.pairs.mine.corpus.column"],
        {"corpus.csv": "id,text\n1,a text\n"},
        lambda r, f: mine_pairs(r, f, corpus={"source": str(f / "corpus.csv")})),
    "mine: a mining model that does not exist": Case(
        ExitCode.INVALID_INPUT, ["datasets.train.pairs.mine.model: model directory", "no-model' does not exist"], {},
        lambda r, f: (mine_pairs(r, f), r["datasets"]["train"]["pairs"]["mine"].update(model=str(f / "no-model"))),
        commands=RUN),
    "mine: a cross-encoder as the mining model": Case(
        ExitCode.INVALID_INPUT, ["datasets.train.pairs.mine.model", "a cross-encoder (a reranker) scores pairs but "
                                 "cannot embed texts", "the cross-encoder to datasets.train.pairs.mine.rescore"],
        {"reranker/config.json": json.dumps({"architectures": ["BertForSequenceClassification"],
                                             "model_type": "bert"})},
        lambda r, f: (mine_pairs(r, f), r["datasets"]["train"]["pairs"]["mine"].update(model=str(f / "reranker"))),
        commands=RUN),
    "mine: filters that remove every candidate": Case(
        ExitCode.DATA_ERROR, ["datasets.train.pairs.mine: no query got a negative", "loosen --max-score"], {},
        lambda r, f: mine_pairs(r, f, max_score=-1.0), commands=RUN),
    "router_mapping on a model without router": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs.router_mapping: the model has no router"], {},
                                                     lambda r, f: r["datasets"]["train"]["pairs"].update(
                                                         router_mapping={"sentence1": "query", "sentence2": "document"})),
    # -- --set overrides (exit 2) --
    "--set without a value": Case(ExitCode.INVALID_INPUT, ["--set 'training.batch_size': expected KEY.PATH=VALUE"], {},
                                  args=("--set", "training.batch_size")),
    "--set of an unknown key": Case(ExitCode.INVALID_INPUT, ["training.lerning_rate: unknown key"], {},
                                    args=("--set", "training.lerning_rate=1e-4")),
    "--set of a bad value": Case(ExitCode.INVALID_INPUT, ["training.batch_size", "valid integer"], {},
                                 args=("--set", "training.batch_size=many")),
    "--set of invalid YAML": Case(ExitCode.INVALID_INPUT, ["--set 'training.adam_betas=[0.9'", "not valid YAML"], {},
                                  args=("--set", "training.adam_betas=[0.9")),
    "--set below a value": Case(ExitCode.INVALID_INPUT, ["--set 'training.max_steps.count=2'", "training.max_steps is a value"], {},
                                args=("--set", "training.max_steps.count=2")),
    "--set of a list index out of range": Case(ExitCode.INVALID_INPUT, ["--set 'evaluators.3.batch_size=8'", "not an index"], {},
                                               args=("--set", "evaluators.3.batch_size=8")),
    # -- models (exit 2): folder or file named --
    "model directory missing": Case(ExitCode.INVALID_INPUT, ["model directory", "no-model", "does not exist"], {},
                                    lambda r, f: set_model(r, f, "no-model"), commands=ALL),
    "model is a file": Case(ExitCode.INVALID_INPUT, ["model.bin' is a file; a model is a directory"], {"model.bin": "x"},
                            lambda r, f: set_model(r, f, "model.bin"), commands=ALL),
    "model folder without a model": Case(ExitCode.INVALID_INPUT, ["empty-model: neither a sentence-transformers model"],
                                         {"empty-model/notes.txt": "x"}, lambda r, f: set_model(r, f, "empty-model"),
                                         commands=ALL),
    # train and validate-dataset read the tokenizer first, eval the modules.
    "modules.json alone, not JSON": Case(ExitCode.INVALID_INPUT, ["bare-model: cannot read the model", "check that it is complete"],
                                         {"bare-model/modules.json": "[{not json"}, lambda r, f: set_model(r, f, "bare-model"),
                                         commands=ALL, eval_fragments=["bare-model/modules.json: not valid JSON"]),
    "config.json not JSON": Case(ExitCode.INVALID_INPUT, ["bad-config/config.json:1:2: not valid JSON"],
                                 {}, lambda r, f: damage_model(r, f, "bad-config", {"config.json": "{oops"}), commands=ALL),
    "modules.json not JSON": Case(ExitCode.INVALID_INPUT, ["broken-model/modules.json: not valid JSON"], {},
                                  lambda r, f: damage_model(r, f, "broken-model", {"modules.json": "[{not json"}), commands=MODEL),
    "unknown module type": Case(ExitCode.INVALID_INPUT, ["odd-model/modules.json",
                                                         "'sentence_transformers.models.Frobnicator' is not supported"], {},
                                lambda r, f: damage_model(r, f, "odd-model", {"modules.json": modules_json(
                                    ST_TRANSFORMER, "sentence_transformers.models.Frobnicator")}), commands=MODEL),
    "a cross-encoder for an embedding model": Case(ExitCode.INVALID_INPUT, ["ce-model", "is a cross-encoder"], {},
                                   lambda r, f: damage_model(r, f, "ce-model", {
                                       "modules.json": modules_json(ST_TRANSFORMER),
                                       "config_sentence_transformers.json": '{"model_type": "CrossEncoder"}'}),
                                   commands=MODEL),
    "hub model offline": Case(ExitCode.INVALID_INPUT, ["cannot get model 'nobody-xyz/no-such-model' from the Hugging Face hub"], {},
                              lambda r, f: r["model"].update(base="nobody-xyz/no-such-model"), commands=ALL),
    # -- data files (exit 3) --
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
    "csv content in a .parquet file": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: cannot load", "fake.parquet"],
                                           {"fake.parquet": GOOD_PAIRS}, lambda r, f: train_source(r, str(f / "fake.parquet"))),
    "a folder without data files": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: cannot load"], {"folder/x.txt": ""},
                                        lambda r, f: train_source(r, str(f / "folder"))),
    "split that does not exist": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: cannot load", "(split 'test')", "Unknown split"], {},
                                      lambda r, f: train_source(r, str(f / "train.csv"), split="test")),
    "hub dataset offline": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: cannot load 'nobody-xyz/no-such-data'"], {},
                                lambda r, f: train_source(r, "nobody-xyz/no-such-data")),
    "where: a column the data lacks": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs.where: 'lang' is not a column"], {},
                                           lambda r, f: train_source(r, str(f / "train.csv"), where={"lang": "en"})),
    "where: keeps no row": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs.where: no row of", "matches"], {},
                                lambda r, f: train_source(r, str(f / "train.csv"), where={"score": 5})),
    # -- columns (exit 3) --
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
    "ignoring a column the data lacks": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: ignore_columns names 'idd', which is not a column"], {},
                                             lambda r, f: train_source(r, str(f / "train.csv"), ignore_columns=["idd"])),
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
    # -- texts and labels (exit 3): column and row --
    "missing text": Case(ExitCode.DATA_ERROR, ["column 'sentence2' (sentence2) has 1 missing values, at row 1"],
                         {"holes.csv": "sentence1,sentence2,score\na,b,0.5\nc,,0.2\n"},
                         lambda r, f: train_source(r, str(f / "holes.csv"))),
    "null text in json": Case(ExitCode.DATA_ERROR, ["column 'sentence1' (sentence1) has 1 missing values, at row 1"],
                              {"nulls.jsonl": '{"sentence1": "a", "sentence2": "b", "score": 0.5}\n'
                                              '{"sentence1": null, "sentence2": "d", "score": 0.2}\n'},
                              lambda r, f: train_source(r, str(f / "nulls.jsonl"))),
    "NaN score": Case(ExitCode.DATA_ERROR, ["label column 'score' has 1 missing values, at row 0"],
                      {"nan.csv": "sentence1,sentence2,score\na,b,nan\nc,d,0.5\n"}, lambda r, f: train_source(r, str(f / "nan.csv"))),
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
    "fractional class": Case(ExitCode.DATA_ERROR, ["label column 'label' must hold integers from 0 to 2", "at row 1 (values [1.5])"],
                             {"nli.csv": "sentence1,sentence2,label\na,b,0\nc,d,1.5\n"},
                             lambda r, f: (set_loss(r, {"type": "SoftmaxLoss", "num_labels": 3}),
                                           train_source(r, str(f / "nli.csv")))),
    "binary label not 0/1": Case(ExitCode.DATA_ERROR, ["label column 'label' must hold 0 or 1", "at row 1 (values [2.0])"],
                                 {"bin.csv": "sentence1,sentence2,label\na,b,0\nc,d,2\n"},
                                 lambda r, f: (set_loss(r, {"type": "ContrastiveLoss"}), train_source(r, str(f / "bin.csv")))),
    "score outside the cosine's range": Case(ExitCode.DATA_ERROR, ["between -1.0 and 1.0", "at row 0"],
                                             {"big.csv": "sentence1,sentence2,score\na,b,4\nc,d,0.5\n"},
                                             lambda r, f: (set_loss(r, {"type": "CosineSimilarityLoss"}),
                                                           train_source(r, str(f / "big.csv")))),
    "list label where a score goes": Case(ExitCode.DATA_ERROR, ["label column 'score' must be numeric (score label), but its type is list"],
                                          {"lists.jsonl": '{"sentence1": "a", "sentence2": "b", "score": [0.5, 0.1]}\n'},
                                          lambda r, f: train_source(r, str(f / "lists.jsonl"))),
    "cross-encoder loss on a dense model": Case(ExitCode.INVALID_INPUT, [
        "recipe.yaml:", "losses.main.type: BinaryCrossEntropyLoss trains cross-encoders (model.kind: cross_encoder), "
        "which score text pairs, but this model is dense: use a dense loss"], {},
        lambda r, f: set_loss(r, {"type": "BinaryCrossEntropyLoss"})),
    "cross-encoder loss option not one of the choices": Case(
        ExitCode.INVALID_INPUT, ["losses.main.activation_fn", "'identity', 'sigmoid' or 'tanh'"], {},
        lambda r, f: set_loss(r, {"type": "LambdaLoss", "activation_fn": "softmax"})),
    "LambdaLoss mu without its scheme": Case(
        ExitCode.INVALID_INPUT, ["losses.main", "mu weighs NDCGLoss2PPScheme's terms; weighting_scheme "
                                               "LambdaRankScheme has none"], {},
        lambda r, f: set_loss(r, {"type": "LambdaLoss", "weighting_scheme": "LambdaRankScheme", "mu": 3})),
    "list labels of unequal length": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: label column 'label' must hold lists of numbers of one length", "found lengths [1, 2]"],
                                          {"margins.jsonl": '{"query": "q", "positive": "p", "negative": "n", "label": [0.5, 0.1]}\n'
                                                            '{"query": "r", "positive": "s", "negative": "t", "label": [0.5]}\n'},
                                          lambda r, f: (set_loss(r, {"type": "MarginMSELoss"}),
                                                        train_source(r, str(f / "margins.jsonl")))),
    # -- evaluators (exit 3 for their data) --
    "evaluator data missing a column": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev)", "needs a score label"],
                                            {"unlabeled.csv": "sentence1,sentence2\na,b\n"},
                                            lambda r, f: set_evaluator(r, source=str(f / "unlabeled.csv")), commands=ALL,
                                            eval_fragments=["--evaluator sts (sts)", "needs a score label"]),
    "evaluator data file missing": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev)", "gone.csv", "does not exist"], {},
                                        lambda r, f: set_evaluator(r, source=str(f / "gone.csv")), commands=ALL,
                                        eval_fragments=["--evaluator sts (sts)", "gone.csv", "does not exist"]),
    "evaluator data file empty": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev).source:", "empty.csv' is empty"], {"empty.csv": ""},
                                      lambda r, f: set_evaluator(r, source=str(f / "empty.csv")), commands=ALL,
                                      eval_fragments=["--evaluator sts (sts).source:", "empty.csv' is empty"]),
    "evaluator column mapped to nothing": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev).columns: 'label' maps to column 'scroe'"], {},
                                               lambda r, f: set_evaluator(r, columns={"sentence1": "sentence1",
                                                                                      "sentence2": "sentence2", "label": "scroe"}),
                                               commands=ALL, eval_fragments=["--evaluator sts (sts).columns: 'label' maps to column 'scroe'"]),
    "evaluator with blank texts": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev)", "empty texts"],
                                       {"blank.csv": 'sentence1,sentence2,score\na,b,0.5\n" ",c,0.1\n'},
                                       lambda r, f: set_evaluator(r, source=str(f / "blank.csv")), commands=ALL,
                                       eval_fragments=["--evaluator sts (sts)", "empty texts"]),
    "triplet evaluator on pairs": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev): column 'score' looks like a label"], {},
                                       lambda r, f: set_evaluator(r, type="triplet"), commands=ALL,
                                       eval_fragments=["--evaluator triplet (triplet): column 'score' looks like a label"]),
    "ir evaluator on a file, not a BEIR folder": Case(ExitCode.DATA_ERROR, ["evaluators[0] (dev).source:", "is not a folder; retrieval data is a BEIR folder"], {},
                                                      lambda r, f: set_evaluator(r, type="ir"), commands=ALL,
                                                      eval_fragments=["--evaluator ir (ir).source:", "is not a folder"]),
    # -- cross-encoder evaluators: data (exit 3), given to a cross-encoder by eval; options (exit 2) in a recipe --
    "cross-encoder reranking list holding a number": Case(
        ExitCode.DATA_ERROR, [], {"rerank.jsonl": '{"query": "q", "positive": ["p"], "negative": ["n"]}\n'
                                                  '{"query": "r", "positive": ["s"], "negative": ["t", 7]}\n'},
        lambda r, f: cross_encoder_evaluator(r, f, type="cross_encoder_reranking", source=str(f / "rerank.jsonl")),
        commands=(EVAL,), eval_fragments=["--evaluator cross_encoder_reranking (cross_encoder_reranking): column "
                                          "'negative' (negative) must hold a list of non-empty texts", "at row 1",
                                          "fix or drop those rows"]),
    "cross-encoder reranking without negatives or documents": Case(
        ExitCode.DATA_ERROR, [], {"rerank.jsonl": '{"query": "q", "positive": ["p"]}\n'},
        lambda r, f: cross_encoder_evaluator(r, f, type="cross_encoder_reranking", source=str(f / "rerank.jsonl")),
        commands=(EVAL,), eval_fragments=["expected 3 text columns (query, positive, negative) but found 2"]),
    "cross-encoder classification label outside 0/1": Case(
        ExitCode.DATA_ERROR, [], {"pairs.csv": "sentence1,sentence2,label\na,b,1\nc,d,2\n"},
        lambda r, f: cross_encoder_evaluator(r, f, type="cross_encoder_classification", source=str(f / "pairs.csv")),
        commands=(EVAL,), eval_fragments=["--evaluator cross_encoder_classification", "label column 'label' must hold "
                                          "0 or 1; 1 rows do not, at row 1"]),
    "cross-encoder NanoBEIR on a BEIR folder without candidates": Case(
        ExitCode.DATA_ERROR, [], {"beir/corpus.jsonl": '{"_id": "d", "text": "a doc"}\n',
                                  "beir/queries.jsonl": '{"_id": "q", "text": "a query"}\n',
                                  "beir/qrels/test.tsv": "query-id\tcorpus-id\tscore\nq\td\t1\n"},
        lambda r, f: cross_encoder_evaluator(r, f, type="cross_encoder_nanobeir", source=str(f / "beir")),
        commands=(EVAL,), eval_fragments=["which brings no candidates to rerank: name a first_stage model"]),
    "cross-encoder NanoBEIR with a first stage and candidates": Case(
        ExitCode.INVALID_INPUT, ["evaluators[0]", "`first_stage` and `candidates` both name the candidates; keep one"],
        {}, lambda r, f: set_evaluator(r, type="cross_encoder_nanobeir", first_stage="m", candidates="c.jsonl")),
    "cross-encoder classification with no labels": Case(
        ExitCode.INVALID_INPUT, ["evaluators[0].num_labels", "greater than or equal to 1"], {},
        lambda r, f: set_evaluator(r, type="cross_encoder_classification", num_labels=0)),
    "several problems at once": Case(ExitCode.DATA_ERROR, ["datasets.train.pairs: the dataset has no rows",
                                                           "evaluators[0] (dev): the loss/evaluator needs a score label"],
                                     {"unlabeled.csv": "sentence1,sentence2\na,b\n", "header.csv": "sentence1,sentence2,score\n"},
                                     lambda r, f: (set_evaluator(r, source=str(f / "unlabeled.csv")),
                                                   train_source(r, str(f / "header.csv")))),
    # -- the output directory and --resume (exit 2) --
    "an existing run without --resume": Case(ExitCode.INVALID_INPUT, ["training.output_dir:", "already holds a training run",
                                                                       "--resume"],
                                             {"run/final/modules.json": "[]"}, commands=RUN),
    "an existing checkpoint without --resume": Case(ExitCode.INVALID_INPUT, ["already holds a training run"],
                                                    {"run/checkpoints/checkpoint-1/trainer_state.json": "{}"}, commands=RUN),
    "--resume of a finished run without checkpoint": Case(ExitCode.INVALID_INPUT, ["--resume: the run in", "kept no checkpoint"],
                                                          {"run/final/modules.json": "[]"}, commands=RUN, args=("--resume",)),
    # -- the built model (exit 2, before any step): what only the model's config and tokenizer show --
    "max_seq_length past the position embeddings": Case(ExitCode.INVALID_INPUT, [
        "model.max_seq_length: 100000 exceeds the 64 positions", "set model.max_seq_length to at most 64"], {},
        lambda r, f: r["model"].update(max_seq_length=100000), commands=RUN),
    "a prompt that leaves no room for the text": Case(ExitCode.INVALID_INPUT, [
        "model.prompts.query: the prompt takes", "leaving no room for the text"], {},
        lambda r, f: r["model"].update(max_seq_length=4, prompts={"query": "a long query prompt"}), commands=RUN),
    # -- security (exit 2): nothing in a recipe runs code --
    "YAML alias bomb": Case(ExitCode.INVALID_INPUT, ["recipe.yaml", "expands to more than 100,000 values"], {},
                            raw_recipe="a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
                                f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                                f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                                f"*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))),
    "trust_remote_code as a string": Case(ExitCode.INVALID_INPUT, ["model.trust_remote_code", "valid boolean"], {},
                                          lambda r, f: r["model"].update(trust_remote_code="no")),
    "python tag in the recipe": Case(ExitCode.INVALID_INPUT, ["recipe.yaml:1: the YAML tag !!python/object/apply:os.system is not allowed"], {},
                                     raw_recipe=lambda f: f"model: !!python/object/apply:os.system ['touch {f / MARKER}']\n"),
    "python tag in an override": Case(ExitCode.INVALID_INPUT, ['--set "model.base=!!python/object/apply:os.system', "the YAML tag !!python/object/apply:os.system is not allowed"], {},
                                      lambda r, f: None, args=lambda f: ("--set", f"model.base=!!python/object/apply:os.system ['touch {f / MARKER}']")),
    # A recipe asking for remote code without trust_remote_code: train and validate-dataset fail in transformers (exit 1,
    # traceback: being fixed, error boundary); eval refuses it.
    "remote code without trust_remote_code": Case(ExitCode.INVALID_INPUT, ["remote-model/config.json: this model needs its own Python code",
                                                                           "model.trust_remote_code: true"], {},
                                                  lambda r, f: damage_model(r, f, "remote-model", {"config.json": remote_config(r)}),
                                                  commands=ALL),
    "model module of custom code": Case(ExitCode.INVALID_INPUT, ["custom-model/modules.json",
                                                                 "custom code, which embedtrain does not run"], {},
                                        lambda r, f: damage_model(r, f, "custom-model", {"modules.json": modules_json(
                                            ST_TRANSFORMER, "my_package.Backdoor")}),
                                        commands=MODEL),
}


def write_case(case: Case, folder: Path, model: Path) -> dict:
    """Write the case's files and recipe into `folder`; return the recipe as written (the base one for raw recipes)."""
    (folder / "train.csv").write_text(GOOD_PAIRS)
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    recipe = base_recipe(folder, model)
    recipe_path = folder / "recipe.yaml"
    if case.raw_recipe is not None:
        raw = case.raw_recipe(folder) if callable(case.raw_recipe) else case.raw_recipe
        recipe_path.write_bytes(raw) if isinstance(raw, bytes) else recipe_path.write_text(raw)
    else:
        case.change(recipe, folder)
        recipe_path.write_text(yaml.safe_dump(recipe))
    return recipe


def command_line(command: str, case: Case, folder: Path, recipe: dict) -> list[str]:
    if command == EVAL:  # the recipe's model and first evaluator, as eval's arguments
        evaluator = recipe["evaluators"][0]
        columns = [f"{role}={column}" for role, column in evaluator.get("columns", {}).items()]
        return [EVAL, recipe["model"]["base"], "--evaluator", f"{evaluator['type']}={evaluator['source']}",
                *(["--columns", ",".join(columns)] if columns else [])]
    args = case.args(folder) if callable(case.args) else case.args
    # validate-dataset's panels wrap text in borders; its JSON report keeps every message on one line.
    return [command, str(folder / case.recipe_name), *args, *(["--json"] if command == VALIDATE else [])]


def files_under(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*")}


CASE_RUNS = [pytest.param(case, command, id=f"{name}-{command}") for name, case in CASES.items() for command in case.commands]


@pytest.mark.parametrize("case, command", CASE_RUNS)
def test_bad_input_is_rejected_before_training(case, command, tmp_path, tiny_checkpoint):
    AcceleratorState._reset_state(reset_partial_state=True)
    recipe = write_case(case, tmp_path, tiny_checkpoint)
    before = files_under(tmp_path)
    result = runner.invoke(app, command_line(command, case, tmp_path, recipe))
    assert result.exit_code == case.code, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    for fragment in case.eval_fragments if command == EVAL and case.eval_fragments is not None else case.fragments:
        assert fragment in output, output
    assert "Traceback (most recent call last)" not in result.output
    assert output.count("data problem") <= 1  # one list of every problem, not lists nested in it
    assert files_under(tmp_path) == before  # nothing written: no run, no checkpoint, no file a payload made
    assert not (tmp_path / MARKER).exists()


def test_the_corpus_is_broad():
    assert len(CASES) >= 60
    for command in (TRAIN, VALIDATE, EVAL):
        assert sum(command in case.commands for case in CASES.values()) >= 8, command


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


LISTS = '{"query": "q", "documents": ["a", "b", "c"], "scores": [1, 0, 0]}\n'
CROSS_ENCODER_DATA = {
    # What only a cross-encoder's data can get wrong, through `validate-dataset --data FILE --loss LOSS` (a recipe
    # needs model.kind: cross_encoder, which the model helpers bring).
    "lists in a csv": ("LambdaLoss", "lists.csv", "query,documents,scores\nq,a b c,1\n", [
        "column 'documents' (documents) must hold a list of texts per row (the row's candidates), but its type is "
        "large_string; store lists in a json(l), parquet or arrow file",
        "label column 'scores' must hold a list of numbers per row, one score per entry of column 'documents', but "
        "its type is int64"]),
    "fewer scores than documents": ("ListNetLoss", "lists.jsonl", LISTS + '{"query": "r", "documents": ["d", "e"], '
                                    '"scores": [1]}\n', [
        "label column 'scores' must hold one score per entry of column 'documents'; 1 rows do not (row 1: documents "
        "has 2 entries but scores has 1)"]),
    "a query without documents": ("PListMLELoss", "lists.jsonl", LISTS + '{"query": "r", "documents": [], '
                                  '"scores": []}\n', ["column 'documents' (documents) has 1 empty lists, at row 1"]),
    "a blank document": ("ADRMSELoss", "lists.jsonl", '{"query": "q", "documents": ["a", " "], "scores": [1, 0]}\n',
                         ["column 'documents' (documents) has 1 missing or empty texts in its lists, at row 0"]),
    "one score where a list goes": ("RankNetLoss", "lists.jsonl", '{"query": "q", "documents": ["a"], "scores": 1}\n',
                                    ["label column 'scores' must hold a list of numbers per row, one score per entry "
                                     "of column 'documents', but its type is int64"]),
    "a non-finite document score": ("ListMLELoss", "lists.jsonl",
                                    '{"query": "q", "documents": ["a", "b"], "scores": [1, NaN]}\n',
                                    ["label column 'scores' must hold finite numbers; 1 rows do not, at row 0"]),
    "a relevance label beyond 0..1": ("BinaryCrossEntropyLoss", "pairs.csv", "question,answer,label\nq,a,1\nr,b,4\n",
                                      ["label column 'label' must hold numbers between 0.0 and 1.0; 1 rows do not, at "
                                       "row 1 (values [4.0])"]),
    "a class label that is not an integer": ("CrossEntropyLoss", "pairs.csv", "premise,hypothesis,label\np,h,1.5\n",
                                             ["label column 'label' must hold non-negative integers"]),
    "a label for the ranking loss": ("CrossEncoderMultipleNegativesRankingLoss", "pairs.csv",
                                     "anchor,positive,label\nq,a,1\n", ["column 'label' looks like a label, but this "
                                                                         "loss/evaluator takes no label"]),
}


@pytest.mark.parametrize(("loss", "name", "content", "fragments"), CROSS_ENCODER_DATA.values(), ids=CROSS_ENCODER_DATA.keys())
def test_cross_encoder_data_is_checked_with_its_rows(loss, name, content, fragments, tmp_path):
    path = tmp_path / name
    path.write_text(content)
    result = runner.invoke(app, ["validate-dataset", "--data", str(path), "--loss", loss, "--json"])
    assert result.exit_code == ExitCode.DATA_ERROR, result.output
    assert "Traceback (most recent call last)" not in result.output
    [report] = json.loads(result.stdout)["datasets"]
    assert all(error.startswith(str(path)) for error in report["errors"]), report["errors"]
    for fragment in fragments:
        assert any(fragment in error for error in report["errors"]), report["errors"]


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


# -- embedtrain mine and score: arguments, models and options exit 2, data exits 3; nothing is written --------------

MINING_PAIRS = ("question,answer,label\nwho plays the guitar,a man plays guitar,1\nwho plays the guitar,a dog runs,0\n"
                "who reads,a child reads a book,1\nwho reads,the child is reading,1\nwhere is the cat,a cat sits,1\n"
                "where is the cat,the sun is big,0\nwhat is the weather,it is raining today,1\n")
CROSS_ENCODER_CONFIG = json.dumps({"architectures": ["BertForSequenceClassification"], "model_type": "bert",
                                   "sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid"}})


@dataclass
class MiningCase:
    code: ExitCode
    fragments: list[str]
    args: list[str]  # the command line; {folder} and {model} are filled in
    files: dict[str, str] = None  # written into the test folder (pairs.csv holds MINING_PAIRS unless given)
    prepare: Callable[[Path, Path], None] = lambda folder, model: None  # more set-up: (folder, tiny model)


def mine(*more: str) -> list[str]:
    return ["mine", "--data", "{folder}/pairs.csv", "--model", "{model}", "--output", "{folder}/out.parquet", *more]


def score(*more: str) -> list[str]:
    return ["score", "--data", "{folder}/rows.csv", "--model", "{model}", "--output", "{folder}/out.jsonl", *more]


def nan_model(folder: Path, model: Path) -> None:
    """A copy of the tiny model whose word embeddings are NaN: it loads, but cannot embed."""
    from transformers import BertModel

    shutil.copytree(model, folder / "nan-model")
    broken = BertModel.from_pretrained(model)
    with torch.no_grad():
        broken.embeddings.word_embeddings.weight.fill_(float("nan"))
    broken.save_pretrained(folder / "nan-model")


MINING_CASES = {
    "mine: an empty corpus": MiningCase(ExitCode.DATA_ERROR, ["--corpus: the dataset has no rows"],
                                        mine("--corpus", "{folder}/corpus.csv"), {"corpus.csv": "text\n"}),
    "mine: a corpus of several columns": MiningCase(
        ExitCode.INVALID_INPUT, ["the corpus has columns ['id', 'text']", "--corpus-column"],
        mine("--corpus", "{folder}/corpus.csv"), {"corpus.csv": "id,text\n1,a text\n"}),
    "mine: a corpus column that does not exist": MiningCase(
        ExitCode.DATA_ERROR, ["'text' maps to column 'body', which the data does not have"],
        mine("--corpus", "{folder}/corpus.csv", "--corpus-column", "body"), {"corpus.csv": "id,text\n1,a text\n"}),
    "mine: no query has a positive": MiningCase(
        ExitCode.DATA_ERROR, ["no query has a positive: none of the 2 rows has label 1"], mine(),
        {"pairs.csv": "question,answer,label\nwho,a man,0\nwhere,a dog,0\n"}),
    "mine: a label that is not 0/1": MiningCase(
        ExitCode.DATA_ERROR, ["label column 'label' must hold 0 or 1", "values [0.5]"], mine(),
        {"pairs.csv": "question,answer,label\nwho,a man,1\nwhere,a dog,0.5\n"}),
    "mine: an empty positive": MiningCase(
        ExitCode.DATA_ERROR, ["column 'answer' (positive) has 1 empty texts, at row 1"], mine(),
        {"pairs.csv": "question,answer\nwho,a man\nwhere,\"  \"\n"}),
    "mine: one text column": MiningCase(ExitCode.DATA_ERROR, ["expected 2 text columns"], mine(),
                                        {"pairs.csv": "question\nwho\n"}),
    "mine: a data file that does not exist": MiningCase(
        ExitCode.DATA_ERROR, ["--data.source:", "missing.csv' does not exist"],
        ["mine", "--data", "{folder}/missing.csv", "--model", "{model}", "--output", "{folder}/out.parquet"]),
    "mine: more negatives than the range holds": MiningCase(
        ExitCode.INVALID_INPUT, ["num_negatives (5) is larger than the 2 candidates between range_min (2) and "
                                 "range_max (4)"], mine("--num-negatives", "5", "--range-min", "2", "--range-max", "4")),
    "mine: range_min not below range_max": MiningCase(
        ExitCode.INVALID_INPUT, ["range_min (4) must be smaller than range_max (4)"],
        mine("--range-min", "4", "--range-max", "4")),
    "mine: an unknown sampling": MiningCase(ExitCode.INVALID_INPUT, ["--sampling: Input should be 'top' or 'random'"],
                                            mine("--sampling", "best")),
    "mine: a relative margin of 1": MiningCase(ExitCode.INVALID_INPUT, ["--relative-margin: Input should be less "
                                                                        "than 1"], mine("--relative-margin", "1")),
    "mine: an unknown output format": MiningCase(
        ExitCode.INVALID_INPUT, ["--output-format: Input should be 'triplet', 'n-tuple', 'labeled-pair' or "
                                 "'labeled-list'"], mine("--output-format", "pairs")),
    "mine: an output that is not parquet or jsonl": MiningCase(
        ExitCode.INVALID_INPUT, ["out.csv': write a .parquet or a .jsonl file"],
        ["mine", "--data", "{folder}/pairs.csv", "--model", "{model}", "--output", "{folder}/out.csv"]),
    "mine: filters that remove every candidate": MiningCase(
        ExitCode.DATA_ERROR, ["no query got a negative", "max_score: 4", "loosen --max-score"],
        mine("--max-score", "-1")),
    "mine: a corpus too small for any negative": MiningCase(
        ExitCode.DATA_ERROR, ["no query got a negative", "too few candidates: 1"], mine(),
        {"pairs.csv": "question,answer\nwho plays,a man plays guitar\nwho plays,a man plays\n"}),
    "mine: a cross-encoder as the embedding model": MiningCase(
        ExitCode.INVALID_INPUT, ["a cross-encoder (a reranker) scores pairs but cannot embed texts", "--rescore"],
        ["mine", "--data", "{folder}/pairs.csv", "--model", "{folder}/reranker", "--output", "{folder}/out.parquet"],
        {"reranker/config.json": CROSS_ENCODER_CONFIG}),
    "mine: a folder that is not a model": MiningCase(
        ExitCode.INVALID_INPUT, ["neither a sentence-transformers model (modules.json) nor a Hugging Face checkpoint"],
        ["mine", "--data", "{folder}/pairs.csv", "--model", "{folder}/empty", "--output", "{folder}/out.parquet"],
        {"empty/notes.txt": "nothing here"}),
    "mine: a model that gives NaN embeddings": MiningCase(
        ExitCode.INVALID_INPUT, ["the model gives non-finite embeddings (NaN or inf) for queries"],
        ["mine", "--data", "{folder}/pairs.csv", "--model", "{folder}/nan-model", "--output", "{folder}/out.parquet"],
        prepare=nan_model),
    "mine: faiss search of a sparse model": MiningCase(
        ExitCode.INVALID_INPUT, ["--search faiss"],
        ["mine", "--data", "{folder}/pairs.csv", "--model", "{folder}/mlm", "--kind", "sparse", "--search", "faiss",
         "--output", "{folder}/out.parquet"], prepare=lambda folder, model: make_tiny_checkpoint(folder / "mlm",
                                                                                                 masked_lm=True)),
    "mine: a data column named like an output column": MiningCase(
        ExitCode.DATA_ERROR, ["the data's column 'negative' has the name of a column the triplet format adds"],
        mine(), {"pairs.csv": "negative,answer\nwho plays,a man plays guitar\nwhere,a cat sits\nwhen,today\n"}),
    "score: data with a label column": MiningCase(
        ExitCode.DATA_ERROR, ["column 'label' looks like a label", "pass --replace-label"], score(),
        {"rows.csv": "query,positive,negative,label\nwho,a man,a dog,1\n"}),
    "score: --replace-label without a label": MiningCase(
        ExitCode.INVALID_INPUT, ["--replace-label: the data has no label column"], score("--replace-label"),
        {"rows.csv": "query,positive,negative\nwho,a man,a dog\n"}),
    "score: margins of a single candidate": MiningCase(
        ExitCode.INVALID_INPUT, ["--margins: margins are positive - negative", "one candidate column (positive)"],
        score("--margins"), {"rows.csv": "query,positive\nwho,a man\n"}),
    "score: a list of texts in a column": MiningCase(
        ExitCode.DATA_ERROR, ["column 'texts' (positive) must hold text"],
        ["score", "--data", "{folder}/rows.jsonl", "--model", "{model}", "--output", "{folder}/out.jsonl"],
        {"rows.jsonl": '{"query": "who", "texts": ["a man", "a dog"]}\n'}),
}


@pytest.mark.parametrize("case", MINING_CASES.values(), ids=MINING_CASES)
def test_bad_mining_input_is_rejected_and_nothing_written(case, tmp_path, tiny_checkpoint):
    (tmp_path / "pairs.csv").write_text(MINING_PAIRS)
    for name, content in (case.files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    case.prepare(tmp_path, tiny_checkpoint)
    before = files_under(tmp_path)
    arguments = [argument.format(folder=tmp_path, model=tiny_checkpoint) for argument in case.args]
    result = runner.invoke(app, arguments)
    assert result.exit_code == case.code, result.output
    output = " ".join(result.output.split())
    for fragment in case.fragments:
        assert fragment in output, output
    assert "Traceback (most recent call last)" not in result.output
    assert files_under(tmp_path) == before

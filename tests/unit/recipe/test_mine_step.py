"""A dataset's `mine:` step in a recipe: the schema (unknown keys and bad values at their YAML line), the checks across
sections, and the data plan, which checks the pairs and the loss against the columns mining will write before
anything is mined (no model is loaded here)."""

from pathlib import Path

import pytest
import yaml
from helpers.data import SHARED_DATA
from helpers.mining import extra_corpus, write_pairs_csv
from helpers.recipes import recipe_error

from embedtrain.data.contract import ColumnContract
from embedtrain.evaluation.mining.formats import mapping_for
from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.recipe.loading import load_recipe
from embedtrain.recipe.plan import plan_data


@pytest.fixture
def pairs_csv(tmp_path):
    return write_pairs_csv(tmp_path / "pairs.csv", queries=8)


def write_recipe(tmp_path, pairs, loss: dict, mine: dict | None = None, **dataset) -> str:
    recipe = {
        "model": {"base": "tiny-bert"},
        "losses": {"main": loss},
        "datasets": {"train": {"qa": {"source": str(pairs), "mine": {"model": "tiny-bert"} | (mine or {}),
                                      **dataset}}},
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 2},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


MNRL = {"type": "MultipleNegativesRankingLoss"}
README = Path(__file__).resolve().parents[3] / "README.md"


# -- the schema and the checks across sections: exit 2, at the YAML line --------------------------------------------

@pytest.mark.parametrize(("mine", "dataset", "fragments"), [
    ({"rang_max": 10}, {}, ["recipe.yaml:12: datasets.train.qa.mine.rang_max: unknown key (did you mean 'range_max'?)"]),
    ({"num_negatives": 0}, {}, ["datasets.train.qa.mine.num_negatives: Input should be greater than or equal to 1"]),
    ({"output_format": "pairs"}, {}, ["datasets.train.qa.mine.output_format: Input should be 'triplet', 'n-tuple', "
                                      "'labeled-pair' or 'labeled-list'"]),
    ({"num_negatives": 5, "range_min": 2, "range_max": 4}, {},
     ["datasets.train.qa.mine: num_negatives (5) is larger than the 2 candidates between range_min (2) and range_max "
      "(4)"]),
    ({"relative_margin": 1.0}, {}, ["datasets.train.qa.mine.relative_margin: Input should be less than 1"]),
    ({"kind": "cross_encoder"}, {}, ["datasets.train.qa.mine.kind: Input should be 'dense' or 'sparse'"]),
    ({"rescore": "reranker", "rescore_kind": "reranker"}, {},
     ["datasets.train.qa.mine.rescore_kind: Input should be 'auto', 'cross_encoder', 'dense' or 'sparse'"]),
    ({"rescore_kind": "dense"}, {}, ["datasets.train.qa.mine: rescore_kind dense says what the `rescore` model is, "
                                     "and none is given: add `rescore`, or remove rescore_kind"]),
    ({"corpus": {"source": "c.csv", "colum": "text"}}, {},
     ["datasets.train.qa.mine.corpus.colum: unknown key (did you mean 'column'?)"]),
    ({}, {"columns": {"anchor": "question", "positive": "answer", "negative": "other"}},
     ["datasets.train.qa.columns.negative: 'negative': with `mine:`, `columns:` maps the pairs that are mined "
      "(anchor, positive, label)"]),
    ({}, {"streaming": True}, ["datasets.train.qa.streaming: mining reads the whole dataset"]),
])
def test_bad_mine_steps_are_recipe_errors_at_their_line(tmp_path, pairs_csv, mine, dataset, fragments):
    message = recipe_error(write_recipe(tmp_path, pairs_csv, MNRL, mine, **dataset))
    for fragment in fragments:
        assert fragment in message, message


def test_a_mine_step_needs_its_model(tmp_path, pairs_csv):
    path = write_recipe(tmp_path, pairs_csv, MNRL)
    recipe = yaml.safe_load(path.read_text())
    recipe["datasets"]["train"]["qa"]["mine"] = {"num_negatives": 2}
    path.write_text(yaml.safe_dump(recipe))
    assert "datasets.train.qa.mine.model: required key is missing" in recipe_error(path)


def test_the_mining_options_are_those_of_the_mine_command(tmp_path, pairs_csv):
    mine = {"num_negatives": 2, "range_min": 1, "range_max": 20, "relative_margin": 0.05, "sampling": "random",
            "seed": 3, "output_format": "n-tuple", "rescore": "reranker", "corpus": {"source": "c.csv"}}
    step = load_recipe(write_recipe(tmp_path, pairs_csv, MNRL, mine)).datasets.train["qa"].mine
    assert step.options() == MiningOptions(num_negatives=2, range_min=1, range_max=20, relative_margin=0.05,
                                           sampling="random", seed=3, output_format="n-tuple")
    assert step.rescore == "reranker" and step.rescore_kind == "auto" and step.corpus.data_source().source == "c.csv"


# -- the plan: the pairs, and the loss against the columns mining will write (exit 3) -------------------------------

def planned(path):
    plan = plan_data(load_recipe(path))
    [report] = plan.reports
    return plan, report


@pytest.mark.parametrize(("loss", "mine", "mapping"), [
    (MNRL, {}, "anchor=question, positive=answer, negative_1=negative"),
    ({"type": "TripletLoss"}, {"num_negatives": 1}, "anchor=question, positive=answer, negative=negative"),
    ({"type": "TripletLoss"}, {"num_negatives": 1, "output_format": "n-tuple"},
     "anchor=question, positive=answer, negative=negative_1"),
    (MNRL, {"num_negatives": 3, "output_format": "n-tuple"},
     "anchor=question, positive=answer, negative_1=negative_1, negative_2=negative_2, negative_3=negative_3"),
    ({"type": "MarginMSELoss"}, {"output_scores": True},
     "query=question, positive=answer, negative_1=negative, label=scores"),
    ({"type": "CoSENTLoss"}, {"output_format": "labeled-pair", "output_scores": True},
     "sentence1=question, sentence2=answer, label=score"),
    ({"type": "ContrastiveLoss"}, {"output_format": "labeled-pair"},
     "sentence1=question, sentence2=answer, label=label"),
])
def test_a_loss_that_fits_the_mined_rows_passes_the_plan(tmp_path, pairs_csv, loss, mine, mapping):
    plan, report = planned(write_recipe(tmp_path, pairs_csv, loss, mine))
    assert report.errors == []
    assert plan.train == {}  # trained once mined
    [step] = plan.mining
    assert step.where == "datasets.train.qa" and step.mapping.describe() == mapping
    assert f"read by loss 'main' as {mapping}" in report.mined
    assert len(step.pairs.anchors) == report.row_count and len(step.data.queries) == 8


@pytest.mark.parametrize(("loss", "mine", "fragments"), [
    ({"type": "CoSENTLoss"}, {},
     ["datasets.train.qa.mine: loss 'main' (CoSENTLoss) takes sentence1, sentence2 + score label, but mining writes "
      "triplet rows (question, answer, negative)",
      "the formats that fit it: output_format: labeled-pair; output_format: labeled-pair, output_scores: true"]),
    ({"type": "SoftmaxLoss", "num_labels": 3}, {"output_format": "n-tuple", "output_scores": True},
     ["takes sentence1, sentence2 + class label, but mining writes n-tuple rows with scores (question, answer, "
      "negative_1, negative_2, negative_3, scores)", "the formats that fit it: output_format: labeled-pair"]),
    ({"type": "MarginMSELoss"}, {}, ["the formats that fit it: output_format: triplet, output_scores: true; "
                                     "output_format: n-tuple, output_scores: true"]),
    ({"type": "TripletLoss"}, {"output_format": "n-tuple"},  # three negatives for a loss of one
     ["takes anchor, positive, negative, but mining writes n-tuple rows (question, answer, negative_1, negative_2, "
      "negative_3)", "the formats that fit it: output_format: triplet"]),
    (MNRL, {"output_format": "labeled-list"},
     ["mining writes labeled-list rows (question, answer, labels)", "output_format: triplet; output_format: n-tuple"]),
    ({"type": "BatchAllTripletLoss"}, {}, ["no format mining writes fits it"]),
])
def test_a_loss_that_does_not_fit_the_mined_rows_fails_the_plan(tmp_path, pairs_csv, loss, mine, fragments):
    plan, report = planned(write_recipe(tmp_path, pairs_csv, loss, mine))
    assert plan.mining == [] and len(report.errors) == 1
    for fragment in fragments:
        assert fragment in report.errors[0], report.errors[0]


def test_the_pairs_and_the_corpus_are_checked_with_the_loss(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("question,answer,label\nwho,a man,0\nwhere,\"  \",0\n")
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("id,text\n1,a text\n")
    plan, report = planned(write_recipe(tmp_path, pairs, {"type": "CoSENTLoss"}, {"corpus": {"source": str(corpus)}}))
    assert plan.mining == []
    errors = "\n".join(report.errors)
    assert "datasets.train.qa: column 'answer' (positive) has 1 empty texts, at row 1" in errors
    assert ("datasets.train.qa.mine.corpus: the corpus has columns ['id', 'text']; name the one holding the texts "
            "with datasets.train.qa.mine.corpus.column") in errors
    assert "loss 'main' (CoSENTLoss) takes sentence1, sentence2 + score label" in errors


def test_labelled_pairs_without_a_positive_fail_the_plan(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("question,answer,label\nwho,a man,0\nwhere,a dog,0\n")
    _, report = planned(write_recipe(tmp_path, pairs, MNRL))
    assert report.errors == ["datasets.train.qa: no query has a positive: none of the 2 rows has label 1 (column "
                             "'answer' holds the positives of label-1 rows)"]


def test_labelled_pairs_and_a_corpus_become_the_mining_input(tmp_path):
    pairs = tmp_path / "labelled.csv"
    pairs.write_text("q,a,label\nwho plays,a man plays,1\nwho plays,a dog,0\nwhere,a cat sits,1\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(f'{{"id": {index}, "body": "{text}"}}\n' for index, text in enumerate(extra_corpus(5))))
    mine = {"corpus": {"source": str(corpus), "column": "body"}}
    plan, report = planned(write_recipe(tmp_path, pairs, MNRL, mine, columns={"anchor": "q", "positive": "a",
                                                                               "label": "label"}))
    assert report.errors == []
    [step] = plan.mining
    assert step.pairs.labels == [1, 0, 1] and step.corpus == extra_corpus(5)
    assert step.data.queries == ["who plays", "where"]
    assert step.data.corpus == [*extra_corpus(5), "a man plays", "a cat sits"]
    assert step.mapping.describe() == "anchor=q, positive=a, negative_1=negative"


def test_a_pairs_column_named_like_a_mined_column_fails_the_plan(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("question,negative\nwho,a man\n")
    _, report = planned(write_recipe(tmp_path, pairs, MNRL))
    assert report.errors == ["datasets.train.qa.mine: the data's column 'negative' has the name of a column the "
                             "triplet format adds (negative); rename it, or map another name with --columns"]


@pytest.mark.parametrize(("contract", "options", "fits"), [
    (ColumnContract(("anchor", "positive"), "negative"), {}, True),
    (ColumnContract(("anchor", "positive"), "negative"), {"output_format": "labeled-pair"}, False),
    (ColumnContract(("query", "documents"), label="list_scores", list_input="documents"),
     {"output_format": "labeled-list"}, True),
    (ColumnContract(("query", "documents"), label="list_scores", list_input="documents"),
     {"output_format": "labeled-list", "output_scores": True}, True),
    # a labeled-list's lists are not texts, even where a loss takes two texts and a score
    (ColumnContract(("sentence1", "sentence2"), label="score"), {"output_format": "labeled-list",
                                                                 "output_scores": True}, False),
    # 0/1 labels are classes and binary labels, not scores that must be 0/1
    (ColumnContract(("sentence1", "sentence2"), label="binary"), {"output_format": "labeled-pair",
                                                                  "output_scores": True}, False),
    (ColumnContract(("sentence1", "sentence2"), label="class", num_classes=2), {"output_format": "labeled-pair"}, True),
    (ColumnContract(("sentence1", "sentence2"), label="embedding"), {"output_format": "labeled-pair"}, False),
])
def test_which_mined_rows_fit_which_contract(contract, options, fits):
    assert (mapping_for(contract, MiningOptions(**options), "q", "a") is not None) == fits


def test_the_readme_example_passes_the_plan_on_the_trecqa_pairs(tmp_path):
    example = yaml.safe_load(README.read_text(encoding="utf-8").split("# mine-step-example")[1].split("```")[0])
    trecqa = example["datasets"]["train"]["trecqa"]
    trecqa["source"] = str(SHARED_DATA / "trecqa" / "train_pairs.csv")
    recipe = example | {"model": {"base": "sentence-transformers/all-MiniLM-L6-v2"}}
    recipe["training"]["output_dir"] = str(tmp_path / "run")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    plan, report = planned(tmp_path / "recipe.yaml")
    assert report.errors == []
    [step] = plan.mining
    assert step.mapping.describe() == ("anchor=question, positive=answer, negative_1=negative_1, negative_2=negative_2, "
                                       "negative_3=negative_3")
    assert step.pairs.label_column == "label" and len(step.data.queries) < report.row_count


# -- the duplicate check under the recipe's batch_sampler (the mined rows repeat each question) ---------------------

def test_the_mined_rows_duplicate_advice_follows_the_recipe_s_batch_sampler(tmp_path, pairs_csv):
    from datasets import Dataset

    from embedtrain.recipe.plan import with_mined

    # What mining writes for one question with 5 answers and three with one: the question is in 5 of the 8 rows.
    mined = Dataset.from_dict({"question": ["what"] * 5 + ["who", "where", "how"],
                               "answer": [f"answer {i}" for i in range(8)],
                               "negative": [f"wrong {i}" for i in range(8)]})

    def mined_warnings(sampler: str, batch_size: int) -> list[str]:
        path = write_recipe(tmp_path, pairs_csv, MNRL)
        recipe = yaml.safe_load(Path(path).read_text())
        recipe["training"] |= {"batch_sampler": sampler, "batch_size": batch_size}
        Path(path).write_text(yaml.safe_dump(recipe))
        loaded = load_recipe(path)
        plan = plan_data(loaded)
        return with_mined(loaded, plan, {"datasets.train.qa": mined}, None).reports[-1].warnings

    [warning] = mined_warnings("random", 4)
    assert "50.0% duplicate anchors" in warning and "use training.batch_sampler: no_duplicates (now random)" in warning
    [warning] = mined_warnings("no_duplicates", 4)  # already set: not advised again; what is left is named instead
    assert "no_duplicates (now" not in warning and "use training.batch_sampler" not in warning
    assert "5 rows share the text 'what'" in warning and "at least 5 batches where 2 batches of 4" in warning
    assert mined_warnings("no_duplicates", 1) == []  # 8 batches of one row: the 5 fit, nothing left to fix

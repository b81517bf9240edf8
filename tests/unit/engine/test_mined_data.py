"""The cache of a recipe's mining steps: what its key depends on, when a cached file is trusted, and the stand-in rows a
dry run sizes the run with (the shape mining writes, at most as many rows)."""

import csv
import json
import logging
import os
import shutil

import pytest
import yaml
from helpers.mining import extra_corpus, tiny_pairs

from embedtrain.engine.mined_data import MINED_DIR, mining_caches, stand_in_rows
from embedtrain.evaluation.mining.mine import mine_negatives
from embedtrain.evaluation.mining.output import sidecar_path, write_rows
from embedtrain.models.io import load_model
from embedtrain.recipe.loading import load_recipe
from embedtrain.recipe.plan import plan_data

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def folder(tmp_path):
    anchors, positives = tiny_pairs(queries=10)
    with (tmp_path / "pairs.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("question", "answer"), *zip(anchors, positives)])
    (tmp_path / "corpus.csv").write_text("text\n" + "\n".join(extra_corpus(6)) + "\n")
    return tmp_path


MNRL = {"type": "MultipleNegativesRankingLoss"}


def step_of(folder, model, loss: dict = MNRL, cross_encoder: bool = False, **mine):
    recipe = {
        "model": {"base": str(model)} | ({"kind": "cross_encoder"} if cross_encoder else {}),
        "losses": {"main": loss},
        "datasets": {"train": {"qa": {"source": str(folder / "pairs.csv"), "mine": {"model": str(model)} | mine}}},
        "training": {"output_dir": str(folder / "run"), "max_steps": 2},
    }
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    plan = plan_data(load_recipe(folder / "recipe.yaml"))
    plan.raise_on_errors()
    [step] = plan.mining
    return step


def cache_of(folder, model, **mine):
    [cache] = mining_caches([step_of(folder, model, **mine)], folder / "run")
    return cache


def test_the_key_follows_the_data_the_models_and_the_options(folder, tiny_checkpoint):
    model = shutil.copytree(tiny_checkpoint, folder / "tiny")
    first = cache_of(folder, model)
    assert first.path.parent == folder / "run" / MINED_DIR and first.path.name == f"qa-{first.key[:16]}.parquet"
    assert cache_of(folder, model).key == first.key  # stable
    changed = {
        "an option": cache_of(folder, model, range_min=1),
        "the corpus": cache_of(folder, model, corpus={"source": str(folder / "corpus.csv")}),
        "the re-scoring model": cache_of(folder, model, rescore=str(model), rescore_kind="dense"),
        "the re-scoring model's kind": cache_of(folder, model, rescore=str(model), rescore_kind="sparse"),
        "the kind": cache_of(folder, model, kind="dense"),
    }
    with (folder / "pairs.csv").open("a", encoding="utf-8") as handle:
        handle.write("one more question,one more answer\n")
    changed["the data"] = cache_of(folder, model)
    stat = (model / "config.json").stat()
    os.utime(model / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the model's files changed
    changed["the model's files"] = cache_of(folder, model)
    keys = [cache.key for cache in changed.values()]
    assert first.key not in keys and len(set(keys)) == len(keys), changed


def test_a_cache_counts_only_with_its_key_beside_complete_rows(folder, tiny_checkpoint, caplog):
    cache = cache_of(folder, tiny_checkpoint)
    assert cache.rows() is None  # nothing there
    columns = {"question": ["q"], "answer": ["a"], "negative": ["n"]}
    write_rows(columns, cache.path, {"cache_key": "another key"})
    assert cache.rows() is None  # a sidecar of other data, models or options
    write_rows(columns, cache.path, {"cache_key": cache.key})
    assert cache.rows().to_dict() == columns
    sidecar_path(cache.path).unlink()  # killed between the rows and the sidecar
    assert cache.rows() is None
    write_rows(columns, cache.path, {"cache_key": cache.key})
    cache.path.write_bytes(cache.path.read_bytes()[:20])  # damaged after the fact
    with caplog.at_level(logging.WARNING):
        assert cache.rows() is None
    assert "cannot read the cached mined rows" in caplog.text and "mining again" in caplog.text
    sidecar_path(cache.path).write_text("{not json")
    assert cache.rows() is None


@pytest.mark.parametrize(("loss", "mine"), [
    (MNRL, {}), (MNRL, {"output_format": "n-tuple", "num_negatives": 2}),
    ({"type": "CoSENTLoss"}, {"output_format": "labeled-pair", "output_scores": True}),
    ({"type": "ListNetLoss"}, {"output_format": "labeled-list"}),
    ({"type": "MarginMSELoss"}, {"output_scores": True}),
])
def test_stand_in_rows_have_the_shape_mining_writes_and_at_least_its_rows(folder, tiny_checkpoint, loss, mine):
    step = step_of(folder, tiny_checkpoint, loss, cross_encoder=loss["type"] == "ListNetLoss", **mine)
    stand_in = stand_in_rows(step)
    mined = mine_negatives(load_model(tiny_checkpoint), step.data, step.options).columns
    assert stand_in.column_names == list(mined)
    assert stand_in.features == type(stand_in).from_dict(mined).features
    assert len(mined[step.pairs.anchor_column]) <= len(stand_in)
    positives = dict(zip(step.data.queries, step.data.positives))
    own = {query: {step.data.corpus[row] for row in rows} for query, rows in positives.items()}
    if "negative" in stand_in.column_names:  # triplets: no stand-in negative is one of the query's positives
        assert all(row["negative"] not in own[row["question"]] for row in stand_in)


def test_the_sidecar_of_a_cache_names_no_path_of_this_machine(folder, tiny_checkpoint):
    from embedtrain.engine.mined_data import _mine
    from embedtrain.engine.observer import TrainingObserver

    cache = cache_of(folder, tiny_checkpoint, corpus={"source": str(folder / "corpus.csv")})
    _mine(cache, TrainingObserver())
    text = sidecar_path(cache.path).read_text()
    assert str(folder) not in text and str(tiny_checkpoint) not in text
    provenance = json.loads(text)
    assert provenance["cache_key"] == cache.key and provenance["dataset"] == "datasets.train.qa"
    assert provenance["command"] == "train" and provenance["model"]["name"] == tiny_checkpoint.name
    assert provenance["data"]["source"] == "pairs.csv" and provenance["corpus"]["source"] == "corpus.csv"
    assert cache.rows() is not None


def test_a_run_killed_while_writing_leaves_nothing_a_later_run_trusts(folder, tiny_checkpoint, monkeypatch):
    from embedtrain.engine.mined_data import _mine
    from embedtrain.engine.observer import TrainingObserver
    from embedtrain.evaluation.mining import output

    cache = cache_of(folder, tiny_checkpoint)

    def killed(table, path):
        with open(path, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(output.pq, "write_table", killed)
    with pytest.raises(KeyboardInterrupt):
        _mine(cache, TrainingObserver())
    assert not cache.path.exists() and not sidecar_path(cache.path).exists()
    assert cache.rows() is None
    monkeypatch.undo()
    _mine(cache, TrainingObserver())  # the next run mines again
    assert cache.rows() is not None

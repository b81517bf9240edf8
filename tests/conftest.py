"""Shared fixtures for every test folder: a tiny random BERT (2 layers, hidden 32) with a tokenizer built locally, and
small datasets.

Nothing is downloaded: the builders and the data behind these fixtures are in tests/helpers/ (tiny_models.py, data.py).
"""

import os
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from helpers import mirror
from helpers.data import PAIRS, write_beir_folder
from helpers.tiny_models import make_tiny_checkpoint

from embedtrain.data.mirror import ENV_VAR

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A plain HF checkpoint (no modules.json) of a tiny random BERT without dropout."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_mlm_checkpoint(tmp_path_factory) -> Path:
    """A plain HF checkpoint of a tiny random BertForMaskedLM (SPLADE's backbone), without dropout."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-mlm"), masked_lm=True)


@pytest.fixture
def fresh_accelerate_state():
    """For tests that train in this process: each run builds its own Accelerator, and accelerate keeps its state in
    process-wide singletons that a previous run would otherwise leave configured."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def offline_mirror(monkeypatch, tmp_path_factory, fresh_accelerate_state):
    """For tests that run a shipped recipe for real: the hub ids it names mapped to ../shared/data and the installed
    models (EMBEDTRAIN_MIRROR, tests/helpers/mirror.py)."""
    monkeypatch.setenv(ENV_VAR, str(mirror.write_test_mirror(tmp_path_factory.mktemp("mirror"))))


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny-tensor tests: one CPU thread is much faster than several competing ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def splade_tiny_path() -> Path:
    return mirror.splade_tiny_path()


@pytest.fixture(scope="session")
def tiny_checkpoint_with_dropout(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert-dropout"), dropout=0.1)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    return mirror.minilm_path()


@pytest.fixture(scope="session")
def sts_csv(tmp_path_factory) -> Path:
    """sentence1,sentence2,score rows (scores in 0..1)."""
    path = tmp_path_factory.mktemp("data") / "sts.csv"
    lines = ["sentence1,sentence2,score"] + [f"{a},{b},{s}" for a, b, s in PAIRS * 4]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def triplet_csv(tmp_path_factory) -> Path:
    """anchor,positive,negative rows."""
    path = tmp_path_factory.mktemp("data") / "triplets.csv"
    rows = [(a, b, PAIRS[(i + 5) % len(PAIRS)][1]) for i, (a, b, _) in enumerate(PAIRS)]
    path.write_text("\n".join(["anchor,positive,negative"] + [",".join(r) for r in rows * 3]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def beir_folder(tmp_path_factory) -> Path:
    """A tiny BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)."""
    return write_beir_folder(tmp_path_factory.mktemp("beir") / "tinybeir")


@pytest.fixture(scope="session")
def binary_csv(tmp_path_factory) -> Path:
    """sentence1,sentence2,label rows with 0/1 labels."""
    path = tmp_path_factory.mktemp("data") / "binary.csv"
    rows = [f"{a},{b},{int(s >= 0.5)}" for a, b, s in PAIRS * 2]
    path.write_text("\n".join(["sentence1,sentence2,label"] + rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def reranking_jsonl(tmp_path_factory) -> Path:
    """{query, positive: [...], negative: [...]} rows, one with a single-text positive, one without negatives."""
    import json

    rows = []
    for index, (first, second, _) in enumerate(PAIRS):
        negatives = [PAIRS[(index + offset) % len(PAIRS)][1] for offset in range(1, 2 + index % 4)]
        positive = second if index % 5 == 0 else [second, PAIRS[(index + 6) % len(PAIRS)][0]]
        rows.append({"query": first, "positive": positive, "negative": negatives if index != 7 else []})
    path = tmp_path_factory.mktemp("data") / "reranking.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def parallel_csv(tmp_path_factory) -> Path:
    """source,target rows (as translations); two rows share a target text."""
    path = tmp_path_factory.mktemp("data") / "parallel.csv"
    rows = [f"{a},{b}" for a, b, _ in PAIRS] + [f"{PAIRS[5][0]} here,{PAIRS[0][1]}"]
    path.write_text("\n".join(["source,target"] + rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def second_tiny_checkpoint(tmp_path_factory) -> Path:
    """Another random tiny BERT (a different seed), e.g. a teacher for distillation."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert-2"), seed=1)

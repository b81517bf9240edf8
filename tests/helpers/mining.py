"""Mining with both libraries on the same data (the reference's `mine_hard_negatives`, embedtrain's
`mine_negatives`), and small mining data built from the tiny model's vocabulary."""

import csv
import random
from pathlib import Path

from datasets import Dataset

from embedtrain.evaluation.mining.mine import mine_negatives
from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.evaluation.mining.pairs import PairRows, prepare_input
from embedtrain.models.io import load_model
from helpers.tiny_models import WORDS

REFERENCE_NAMES = {"sampling": "sampling_strategy"}
OURS_ONLY = {"seed", "chunk_size", "search", "similarity"}


def tiny_pairs(queries: int = 30, seed: int = 0) -> tuple[list[str], list[str]]:
    """Queries with 1 to 3 positives that share words with them (a query's positives are nearer to it than most
    texts), and one repeated (query, positive) row."""
    draw = random.Random(seed)
    anchors, positives = [], []
    for _ in range(queries):
        topic = draw.sample(WORDS, 4)
        query = " ".join(topic + draw.sample(WORDS, 2))
        for _ in range(draw.choice([1, 1, 2, 3])):
            anchors.append(query)
            positives.append(" ".join(draw.sample(topic, 2) + draw.sample(WORDS, draw.randint(2, 8))))
    return anchors + anchors[:1], positives + positives[:1]


def write_pairs_csv(path: Path, queries: int) -> Path:
    """`tiny_pairs(queries)` as a question,answer CSV file."""
    anchors, positives = tiny_pairs(queries=queries)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("question", "answer"), *zip(anchors, positives)])
    return path


def extra_corpus(count: int = 40, seed: int = 1) -> list[str]:
    draw = random.Random(seed)
    return [" ".join(draw.sample(WORDS, draw.randint(3, 9))) for _ in range(count)]


def mine_with_reference(model_path: Path, anchors: list[str], positives: list[str], options: dict,
                        corpus: list[str] | None = None, cross_encoder=None) -> dict[str, list]:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    model = SentenceTransformer(str(model_path), device="cpu")
    arguments = {REFERENCE_NAMES.get(key, key): value for key, value in options.items() if key not in OURS_ONLY}
    random.seed(options.get("seed", 0))  # the reference draws random negatives from the global generator
    dataset = Dataset.from_dict({"query": anchors, "answer": positives})
    mined = mine_hard_negatives(dataset, model, corpus=corpus, cross_encoder=cross_encoder, verbose=False,
                                **arguments)
    return mined.to_dict()


def mine_with_embedtrain(model_path: Path, anchors: list[str], positives: list[str], options: dict,
                         corpus: list[str] | None = None, labels: list[int] | None = None, rescorer=None,
                         model=None) -> dict[str, list]:
    pairs = PairRows(anchors, positives, labels, "query", "answer", "label" if labels is not None else None)
    model = model or load_model(model_path)
    return mine_negatives(model, prepare_input(pairs, corpus), MiningOptions(**options), rescorer).columns

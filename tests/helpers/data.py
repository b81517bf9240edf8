"""Small shared data: the STS-like PAIRS behind the conftest data fixtures, a tiny BEIR folder writer, and where the
real datasets of the slow tests live (../shared/data beside the repository)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

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

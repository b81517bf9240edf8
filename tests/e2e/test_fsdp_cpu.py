"""FSDP2 on two CPU processes (gloo), through accelerate's FSDP paths (tests/helpers/fsdp_on_cpu.py says how): the
final model, written from the gathered weights, loads in sentence-transformers with the embeddings of a one-process
run of the same recipe, and a run resumed from its sharded checkpoint ends where the uninterrupted run ended, with an
encoder that would run batches in length chunks (whose count differs between processes, which deadlocked FSDP).
Packed encoders (BERT with SDPA, one forward call per batch) were run under FSDP2 by hand (README, Scaling out)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers.data import PAIRS
from helpers.processes import WORKTREE, child_env, tiny_recipe

pytestmark = pytest.mark.slow  # two FSDP launches of two processes and one plain run (~75 s on 2 busy cores)

TEXTS = ["a man is playing the guitar", "the cat sits on the table", "two people ride a bus in the city"]


def fsdp_config(directory: Path) -> Path:
    """configs/fsdp.yaml on the CPU (BertLayer: the tiny BERT's layer class)."""
    config = yaml.safe_load((WORKTREE / "configs" / "fsdp.yaml").read_text()) | {"use_cpu": True}
    path = directory / "fsdp-cpu.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def launch_fsdp(config: Path, recipe: Path, *args: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
         str(WORKTREE / "tests" / "helpers" / "fsdp_on_cpu.py"), "train", str(recipe), *args],
        env=child_env() | {"ACCELERATE_USE_CPU": "true"}, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def write_recipe(directory: Path, model: Path, data: Path, **training) -> Path:
    recipe = tiny_recipe(directory, model, data, max_steps=3, **training)
    config = yaml.safe_load(recipe.read_text())
    # A loss per row: its mean over 2 processes' batches of 8 is the mean over one process's 2 accumulated batches.
    config["losses"] = {"main": {"type": "CosineSimilarityLoss"}}
    config["evaluators"] = [{"type": "sts", "name": "sts-dev", "source": str(data)}]
    config["model"]["attn_implementation"] = "eager"
    recipe.write_text(yaml.safe_dump(config))
    return recipe


def embeddings(path: Path) -> torch.Tensor:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu").encode(TEXTS, convert_to_tensor=True)


def records(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def varied_lengths_csv(directory: Path) -> Path:
    """sentence1,sentence2,score rows whose first texts repeat 1 to 7 times: batches of very different lengths, so
    that a chunked encoder splits the two processes' batches into different numbers of chunks."""
    path = directory / "varied.csv"
    rows = [f"{' '.join([first] * (1 + index % 7))},{second},{score}"
            for index, (first, second, score) in enumerate(PAIRS * 4)]
    path.write_text("\n".join(["sentence1,sentence2,score", *rows]) + "\n")
    return path


def test_fsdp_saves_the_whole_model_and_resumes(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Eager attention has no packed execution, so a batch would run in length chunks, as many as its lengths need:
    different numbers on the two processes, which deadlocked FSDP until chunking was turned off there."""
    data, config = varied_lengths_csv(tmp_path), fsdp_config(tmp_path)
    training = {"save_steps": 2, "eval_steps": 2, "eval_before_training": True}
    sharded = write_recipe(tmp_path / "fsdp", tiny_checkpoint, data, **training)
    completed = launch_fsdp(config, sharded)
    assert "training.length_chunking: off for Transformer under FSDP" in " ".join((completed.stdout + completed.stderr).split())
    # One process, the same batches: process r takes batches r, r + 2, ..., so a step of 2 processes is 2 batches
    # accumulated (one epoch: 48 rows, 6 batches of 8, 3 steps). It runs its batches in length chunks.
    single = write_recipe(tmp_path / "one", tiny_checkpoint, data, gradient_accumulation_steps=2, **training)
    completed = subprocess.run([sys.executable, "-m", "embedtrain", "train", str(single)], env=child_env(),
                               capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stdout[-3000:]

    run, one = tmp_path / "fsdp" / "run", tmp_path / "one" / "run"
    # Evaluation (through the FSDP root module) and training logs agree with the one-process run.
    logged, expected = records(run), records(one)
    assert len(logged) == len(expected) == 6  # evaluations at steps 0, 2, 3; training steps 1, 2, 3
    for record, same in zip(logged, expected):
        for key in ("samples_per_second", "duplicate_rate"):  # timing, and the main process's batches only
            record.pop(key, None)
            same.pop(key, None)
        assert record == pytest.approx(same, rel=1e-5)
    torch.testing.assert_close(embeddings(run / "final"), embeddings(one / "final"), rtol=1e-5, atol=1e-5)
    checkpoint = run / "checkpoints" / "checkpoint-0000002"
    assert (checkpoint / "state" / "pytorch_model_fsdp_0").is_dir()  # accelerate's sharded model state
    torch.testing.assert_close(embeddings(checkpoint / "model"), embeddings(one / "checkpoints" / checkpoint.name / "model"),
                               rtol=1e-5, atol=1e-5)

    # Resumed from the sharded checkpoint of step 2: the same final model as the run that was never stopped. Resumed
    # with load_best_model_at_end, final/ is the best checkpoint's (step 3's, the last), which only the main process
    # copies: every process must know it, or the others would gather the weights for a final model alone (a hang).
    final = embeddings(run / "final")
    shutil.rmtree(run / "checkpoints" / "checkpoint-0000003")
    shutil.rmtree(run / "final")
    launch_fsdp(config, sharded, "--resume", "--set", "training.load_best_model_at_end=true",
                "--set", "training.metric_for_best_model=sts-dev_spearman_cosine")
    assert json.loads((run / "run.json").read_text())["best_checkpoint"]["step"] == 3
    torch.testing.assert_close(embeddings(run / "final"), final, rtol=1e-5, atol=1e-5)

"""Cached losses (CachedMNRL, CachedMNSRL, CachedGIST) with gather_across_devices on two CPU processes (gloo): the mean of the processes' losses is the
one-process loss on the concatenated batch, and the gradients averaged over the processes (as DDP does) are its
gradients. Then the trainer path: two processes training a cached loss with gathering log the loss and gradient norm
of the uncached loss with gathering (the trainer averages a cached loss's gradients itself, outside DDP)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from helpers.processes import WORKTREE, child_env, free_port, tiny_recipe
from helpers.texts import QUADRUPLET

from embedtrain.losses import LOSSES, build_loss
from embedtrain.models.io import load_model

pytestmark = pytest.mark.slow  # spawned processes (~15 s a case on 2 cores)

WORLD_SIZE = 2
ROWS = len(QUADRUPLET[0])
CASES = {
    # mini-batches of 3 rows: 4 rows per process make uneven mini-batches, and chunks of the score matrix
    "cmnrl": {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3},
    "cmnsrl": {"type": "CachedMultipleNegativesSymmetricRankingLoss", "mini_batch_size": 3},
    "cmnrl-directions": {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3,
                         "directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]},
    # GIST gathers candidates but, as the reference, not anchors (other processes' anchors are no negatives); the
    # guide is the model's own checkpoint (filled in below), which masks some candidates but not all.
    "cgist": {"type": "CachedGISTEmbedLoss", "mini_batch_size": 3, "margin": 0.1, "temperature": 0.5,
              "contrast_anchors": False},
}


def loss_and_gradients(checkpoint: Path, params: dict, rows: slice) -> tuple[float, dict[str, torch.Tensor]]:
    model = load_model(checkpoint).train()
    if params["type"] == "CachedGISTEmbedLoss":
        params = {**params, "guide": str(checkpoint)}
    loss = build_loss(LOSSES[params["type"]].params_model(**params), model).train()
    features = [model.tokenize(texts[rows]) for texts in QUADRUPLET]
    value = loss(model, features, None)
    value.backward()
    return value.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _worker(rank: int, port: int, checkpoint: Path, params: dict, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        share = ROWS // WORLD_SIZE
        value, gradients = loss_and_gradients(checkpoint, {**params, "gather_across_devices": True},
                                              slice(rank * share, (rank + 1) * share))
        for gradient in gradients.values():  # DDP's averaging
            dist.all_reduce(gradient)
            gradient /= WORLD_SIZE
        results.put((rank, value, {name: gradient.numpy() for name, gradient in gradients.items()}))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("params", CASES.values(), ids=CASES.keys())
def test_two_processes_compute_the_loss_of_the_whole_batch(params: dict, tiny_checkpoint: Path) -> None:
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=_worker, args=(rank, port, tiny_checkpoint, params, results))
                 for rank in range(WORLD_SIZE)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    torch.set_num_threads(1)
    expected, expected_gradients = loss_and_gradients(tiny_checkpoint, params, slice(None))
    assert sum(value for _, value, _ in outcomes) / WORLD_SIZE == pytest.approx(expected, rel=1e-5)
    for _, _, gradients in outcomes:
        assert gradients.keys() == expected_gradients.keys()
        for name, gradient in expected_gradients.items():
            torch.testing.assert_close(torch.from_numpy(gradients[name]), gradient, rtol=1e-4,
                                       atol=max(1e-4 * gradient.abs().max().item(), 1e-7))


def test_the_trainer_averages_a_cached_loss_gradients(tmp_path: Path, tiny_checkpoint: Path, triplet_csv: Path) -> None:
    """Same data, seed and processes: CachedMNRL and MNRL, both gathering, log the same first loss and gradient
    norm (the norm is taken after the gradients are averaged over the processes)."""
    logged = {}
    for loss in ("MultipleNegativesRankingLoss", "CachedMultipleNegativesRankingLoss"):
        recipe = tiny_recipe(tmp_path / loss, tiny_checkpoint, triplet_csv, max_steps=2, max_grad_norm=1.0)
        config = yaml.safe_load(recipe.read_text())
        config["losses"] = {"main": {"type": loss, "gather_across_devices": True}
                            | ({"mini_batch_size": 3} if loss.startswith("Cached") else {})}
        config["datasets"] = {"train": {"triplets": {"source": str(triplet_csv)}}}
        recipe.write_text(yaml.safe_dump(config))
        completed = subprocess.run([sys.executable, "-m", "embedtrain", "train", str(recipe), "--launch",
                                    str(WORKTREE / "configs" / "cpu-2proc.yaml")],
                                   env=child_env(), capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        logged[loss] = [json.loads(line) for line in (tmp_path / loss / "run" / "metrics.jsonl").read_text().splitlines()]
    uncached, cached = logged["MultipleNegativesRankingLoss"], logged["CachedMultipleNegativesRankingLoss"]
    assert cached[0]["loss"] == pytest.approx(uncached[0]["loss"], rel=1e-5)
    assert cached[0]["grad_norm"] == pytest.approx(uncached[0]["grad_norm"], rel=1e-4)
    assert cached[1]["loss"] == pytest.approx(uncached[1]["loss"], rel=1e-3)

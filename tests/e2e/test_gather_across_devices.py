"""gather_across_devices: two CPU processes (gloo) each holding half the batch compute the loss of the whole batch.

Each process scores its own anchors against every process's candidates, so the mean of the two
processes' losses is the one-process loss on the concatenated batch, and each process's gradient
(averaged over processes, as DDP does) is the one-process gradient of its own rows. Hard-negative
columns are included, so a wrong order of the gathered candidates would show.
"""

import os
from unittest.mock import patch

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers.processes import free_port

from embedtrain.losses import LOSSES, build_loss
from embedtrain.losses.frozen_encoder import FrozenEncoder

pytestmark = pytest.mark.slow  # each case spawns two Python processes (~15 s on 2 cores)

CASES = {
    "mnrl": {"type": "MultipleNegativesRankingLoss", "gather_across_devices": True},
    "mnrl-gte-hardness": {"type": "MultipleNegativesRankingLoss", "gather_across_devices": True,
                          "directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"],
                          "hardness_mode": "all_negatives", "hardness_strength": 5.0},
    "mnsrl": {"type": "MultipleNegativesSymmetricRankingLoss", "gather_across_devices": True},
    # GIST gathers candidates but, as the reference, not anchors: other processes' anchors are no negatives.
    "gist": {"type": "GISTEmbedLoss", "guide": "unused", "gather_across_devices": True, "margin": 0.1,
             "temperature": 0.5, "contrast_anchors": False},
}
WORLD_SIZE, ROWS_PER_PROCESS, COLUMNS, DIM = 2, 4, 4, 16


class _NoModel:
    embedding_dimension = DIM


def make_loss(params: dict):
    # No guide model for GIST: the guide embeddings are given (see loss_value).
    with patch.object(FrozenEncoder, "load", return_value=None):
        return build_loss(LOSSES[params["type"]].params_model(**params), _NoModel())


def loss_value(params: dict, columns: list[torch.Tensor], gather: bool) -> torch.Tensor:
    """The loss of these embedding columns; GIST gets guide embeddings that keep some but not all candidates."""
    loss = make_loss({**params, "gather_across_devices": gather})
    if params["type"] == "GISTEmbedLoss":
        guides = [column.detach() + 0.5 * torch.sin(column.detach()) for column in columns]
        return loss.loss_from_embeddings(columns, guides, gather)
    return loss.compute_loss_from_embeddings(columns, None)


def batch() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(WORLD_SIZE * ROWS_PER_PROCESS, DIM, generator=generator) for _ in range(COLUMNS)]


def _worker(rank: int, port: int, params: dict, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        rows = slice(rank * ROWS_PER_PROCESS, (rank + 1) * ROWS_PER_PROCESS)
        columns = [column[rows].clone().requires_grad_() for column in batch()]
        loss = loss_value(params, columns, gather=True)
        loss.backward()
        # numpy arrays travel by value; tensors would be shared through file descriptors that die with this process.
        results.put((rank, loss.item(), [(column.grad / WORLD_SIZE).numpy() for column in columns]))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("params", CASES.values(), ids=CASES.keys())
def test_two_processes_compute_the_loss_of_the_whole_batch(params: dict) -> None:
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [context.Process(target=_worker, args=(rank, port, params, results)) for rank in range(WORLD_SIZE)]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    columns = [column.requires_grad_() for column in batch()]
    expected = loss_value(params, columns, gather=False)
    expected.backward()
    assert sum(loss for _, loss, _ in outcomes) / WORLD_SIZE == pytest.approx(expected.item(), rel=1e-5)
    for rank, _, grads in outcomes:
        rows = slice(rank * ROWS_PER_PROCESS, (rank + 1) * ROWS_PER_PROCESS)
        for grad, column in zip(grads, columns):
            torch.testing.assert_close(torch.from_numpy(grad), column.grad[rows], rtol=1e-5, atol=1e-7)


def test_training_with_gathering_in_two_processes(tmp_path, tiny_checkpoint, triplet_csv):
    """The trainer path: `torchrun` with two CPU processes trains MNRL with gathering, and evaluation (on both
    processes, each its share of the eval batches, gathering off in eval mode) does not wait for ever."""
    import subprocess
    import sys

    import yaml

    recipe = {
        "model": {"base": str(tiny_checkpoint)},
        "losses": {"mnrl": {"type": "MultipleNegativesRankingLoss", "gather_across_devices": True}},
        "datasets": {"train": {"triplets": {"source": str(triplet_csv)}}, "eval": {"triplets-dev": {"source": str(triplet_csv)}}},
        "evaluators": [{"type": "triplet", "name": "dev", "source": str(triplet_csv)}],
        "training": {"output_dir": str(tmp_path / "run"), "batch_size": 4, "max_steps": 3, "eval_steps": 2, "logging_steps": 1},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "embedtrain", "train", str(path)]
    environment = os.environ | {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "run" / "final" / "modules.json").exists()
    assert "eval_triplets-dev_loss" in (tmp_path / "run" / "metrics.jsonl").read_text()

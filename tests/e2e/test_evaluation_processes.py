"""Evaluation on two CPU processes (gloo): each embeds (a cross-encoder: scores) half the texts, all get every row,
and the metrics equal those of one process; every process ends with the main process's metrics. Fewer texts than
processes works."""

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers.processes import free_port

from embedtrain.evaluation import (
    EVALUATORS,
    build_evaluator,
    embeddings_across_processes,
    same_on_every_process,
    shared_embeddings,
)
from embedtrain.evaluation.processes import compute_in_shares
from embedtrain.evaluation.registry import embed_rows
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.io import load_model

pytestmark = pytest.mark.slow  # two spawned Python processes (~15 s on 2 cores)

WORLD_SIZE = 2


ENTRIES = {
    "dense": lambda sts, triplets, beir: [{"type": "sts", "name": "sts", "source": sts},
                                          {"type": "triplet", "name": "triplet", "source": triplets},
                                          {"type": "ir", "name": "ir", "source": beir, "batch_size": 3}],
    "sparse": lambda sts, triplets, beir: [{"type": "sparse_ir", "name": "ir", "source": beir, "batch_size": 3}],
    "cross_encoder": lambda sts, triplets, beir: [{"type": "cross_encoder_correlation", "name": "sts", "source": sts,
                                                   "batch_size": 3}],
}


def evaluators(kind: str, sts_csv, triplet_csv, beir_folder) -> list:
    entries = ENTRIES[kind](str(sts_csv), str(triplet_csv), str(beir_folder))
    return [build_evaluator(EVALUATORS[entry["type"]].params_model(**entry), f"evaluators[{index}]")
            for index, entry in enumerate(entries)]


def evaluate(model, items) -> tuple[dict[str, float], torch.Tensor]:
    """Every evaluator's metrics, and the embedding (a cross-encoder: the score) of one text (fewer texts than
    processes)."""
    metrics = {}
    with torch.no_grad(), shared_embeddings(), embeddings_across_processes():
        for evaluator in items:
            metrics |= evaluator(model)
        if isinstance(model, CrossEncoder):
            alone = compute_in_shares(model.predict, [("a text", "alone")])
        else:
            alone = embed_rows(model, ["a text alone"], batch_size=4)
        return same_on_every_process(metrics), alone.to_dense()


def _worker(rank: int, port: int, paths: tuple, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        model, kind, *data = paths
        metrics, alone = evaluate(load_model(model).eval(), evaluators(kind, *data))
        results.put((rank, metrics, alone.numpy()))
    finally:
        dist.destroy_process_group()


def saved(tmp_path_factory, checkpoint: Path, kind: str) -> Path:
    from embedtrain.models import save_model
    from embedtrain.models.build import build_model
    from embedtrain.models.config import ModelConfig

    path = tmp_path_factory.mktemp(kind)
    save_model(build_model(ModelConfig(base=str(checkpoint), kind=kind)), path)
    return path


@pytest.mark.parametrize("kind", ENTRIES)
def test_two_processes_evaluate_as_one(tmp_path_factory, kind: str, tiny_checkpoint, tiny_mlm_checkpoint,
                                       sts_csv, triplet_csv, beir_folder) -> None:
    model = {"dense": tiny_checkpoint, "sparse": tiny_mlm_checkpoint, "cross_encoder": tiny_checkpoint}[kind]
    if kind != "dense":
        model = saved(tmp_path_factory, model, kind)
    context = mp.get_context("spawn")
    results = context.Queue()
    paths = (model, kind, sts_csv, triplet_csv, beir_folder)
    port = free_port()
    processes = [context.Process(target=_worker, args=(rank, port, paths, results)) for rank in range(WORLD_SIZE)]
    for process in processes:
        process.start()
    outcomes = sorted((results.get(timeout=180) for _ in processes), key=lambda outcome: outcome[0])
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    torch.set_num_threads(1)
    expected, alone = evaluate(load_model(model).eval(), evaluators(kind, sts_csv, triplet_csv, beir_folder))
    assert len(expected) >= 2
    for _, metrics, alone_there in outcomes:
        assert metrics.keys() == expected.keys()
        for name, value in expected.items():
            assert metrics[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
        torch.testing.assert_close(torch.from_numpy(alone_there), alone)
    assert outcomes[0][1] == outcomes[1][1]  # the main process's metrics, exactly, on both

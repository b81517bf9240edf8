"""The in-memory training loader shares each epoch's batches out between processes: together, N processes train in
every epoch the batches one process trains, in the same order (the sampler's plan for seed + epoch), resumed or not.

The processes are stood in for by accelerate's own DataLoader preparation for process r of N (what
`Accelerator.prepare` calls), so the test needs no process group.
"""

import pytest
from accelerate.data_loader import prepare_data_loader, skip_first_batches
from datasets import Dataset

from embedtrain.data.contract import ColumnContract, ColumnMapping
from embedtrain.data.training_data import PreparedDataset, TextCollator
from embedtrain.engine.loaders import InMemoryLoader
from embedtrain.recipe.training import TrainingConfig

ROWS = 16
BATCH_SIZE = 2


class ProcessOf:
    """What InMemoryLoader asks of an Accelerator, answered as process `rank` of `processes` would answer it."""

    def __init__(self, rank: int, processes: int) -> None:
        self.rank, self.processes = rank, processes

    def prepare(self, loader):
        return prepare_data_loader(loader, num_processes=self.processes, process_index=self.rank, put_on_device=False)

    def skip_first_batches(self, loader, skip: int):
        return skip_first_batches(loader, skip)


def loader_of(rank: int, processes: int, tmp_path) -> InMemoryLoader:
    """A dataset whose first column is each row's index, so that a batch's first column names its rows."""
    rows = Dataset.from_dict({"index": [str(row) for row in range(ROWS)], "text": ["a text"] * ROWS})
    mapping = ColumnMapping((("index", "index"), ("text", "text")), None, inferred=False)
    dataset = PreparedDataset("rows", rows, mapping, ColumnContract(inputs=("index", "text"), label=None), "loss")
    config = TrainingConfig(output_dir=str(tmp_path), batch_size=BATCH_SIZE, seed=7)
    return InMemoryLoader(ProcessOf(rank, processes), {"rows": dataset}, config, TextCollator())


def epoch_rows(loader: InMemoryLoader, epoch: int, skip: int = 0) -> list[list[int]]:
    loader.set_epoch(epoch)
    return [[int(row) for row in batch["features"][0]] for batch in loader.epoch_batches(skip)]


@pytest.mark.parametrize("processes", [2, 4])
def test_every_epoch_the_processes_train_the_batches_of_one_process(processes, tmp_path):
    alone = loader_of(0, 1, tmp_path)
    shares = [loader_of(rank, processes, tmp_path) for rank in range(processes)]
    seen = []
    for epoch in range(3):
        expected = epoch_rows(alone, epoch)
        # process r trains batches r, r + N, ...: step s of the run trains batches sN .. sN + N - 1 of the plan
        per_process = [epoch_rows(share, epoch) for share in shares]
        assert [batch for step in zip(*per_process) for batch in step] == expected, f"epoch {epoch}"
        seen.append(expected)
    assert seen[0] != seen[1] != seen[2]  # each epoch has its own order


def test_an_epoch_resumed_on_two_processes_continues_with_its_own_batches(tmp_path):
    """A resumed run builds its loaders afresh and skips the batches of the epoch its processes already trained."""
    expected = epoch_rows(loader_of(0, 1, tmp_path), epoch=1)
    resumed = [epoch_rows(loader_of(rank, 2, tmp_path), epoch=1, skip=1) for rank in range(2)]
    assert [batch for step in zip(*resumed) for batch in step] == expected[2:]

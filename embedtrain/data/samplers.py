"""Batch samplers. Every batch holds rows of one dataset; the plan of an epoch depends only on (seed, epoch).

Within a dataset, batches are `random`, `no_duplicates` (no text appears twice in a batch, so no
in-batch negative is a copy of a positive) or `group_by_label` (pairs of rows sharing a label, for
the batch-triplet losses). Across datasets, batches are interleaved `proportional`ly (every batch of
every dataset once, in random order), `round_robin` (one batch of each in turn, until the smallest
runs out) or `weighted` (each batch drawn from a dataset with probability proportional to its weight).
Because the plan is a pure function of (seed, epoch), a resumed run continues the same order.
"""

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

BatchSamplerName = Literal["random", "no_duplicates", "group_by_label"]
MultiDatasetSamplerName = Literal["proportional", "round_robin", "weighted"]


def text_keys(columns: list[pa.ChunkedArray]) -> np.ndarray:
    """(rows, columns) integer ids: equal texts get equal ids, in any column."""
    texts = pa.chunked_array([chunk for column in columns for chunk in column.chunks]).combine_chunks()
    return np.asarray(pc.dictionary_encode(texts).indices, dtype=np.int64).reshape(len(columns), -1).T


def random_batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def no_duplicate_batches(order: list[int], keys: np.ndarray, batch_size: int) -> list[list[int]]:
    """Greedy: walk `order`, putting each row in the current batch unless one of its texts is already there.

    A row that clashes waits in a queue and is offered first to the next batches, so it is only
    delayed, never dropped. Rows whose texts occur nowhere else cannot clash and skip the check,
    which keeps a million rows with few duplicates to about a second.
    """
    counts = np.bincount(keys.ravel())
    may_clash = np.flatnonzero((counts[keys] > 1).any(axis=1))
    clash_keys = dict(zip(may_clash.tolist(), map(tuple, keys[may_clash].tolist())))
    batches: list[list[int]] = []
    pending, waiting = deque(order), []
    while pending or waiting:
        batch: list[int] = []
        seen: set[int] = set()
        still_waiting = []
        for row in waiting:
            if len(batch) < batch_size and seen.isdisjoint(clash_keys[row]):
                batch.append(row)
                seen.update(clash_keys[row])
            else:
                still_waiting.append(row)
        waiting = still_waiting
        while len(batch) < batch_size and pending:
            row = pending.popleft()
            row_keys = clash_keys.get(row)
            if row_keys is None:
                batch.append(row)
            elif seen.isdisjoint(row_keys):
                batch.append(row)
                seen.update(row_keys)
            else:
                waiting.append(row)
        batches.append(batch)
    return batches


def group_by_label_batches(order: list[int], labels: list, batch_size: int) -> list[list[int]]:
    """Batches of pairs of rows with the same label, so that every row has a positive in its batch.

    Rows are paired within each label in the shuffled `order` (so pairs come in random order too);
    a label's odd row out is left for the next epoch's shuffle.
    """
    by_label: dict = {}
    pairs: list[tuple[int, int]] = []
    for row in order:
        partner = by_label.pop(labels[row], None)
        if partner is None:
            by_label[labels[row]] = row
        else:
            pairs.append((partner, row))
    per_batch = batch_size // 2
    return [[row for pair in pairs[start:start + per_batch] for row in pair] for start in range(0, len(pairs), per_batch)]


@dataclass
class DatasetBatching:
    """How one dataset is cut into batches: its size, the strategy, and what the strategy looks at."""

    size: int
    strategy: BatchSamplerName = "random"
    keys: np.ndarray | None = None  # text ids per row (rows, columns), for no_duplicates
    labels: list | None = None  # label per row, for group_by_label

    def batches(self, batch_size: int, drop_last: bool, generator: torch.Generator) -> list[list[int]]:
        order = torch.randperm(self.size, generator=generator).tolist()
        if self.strategy == "no_duplicates":
            batches = no_duplicate_batches(order, self.keys, batch_size)
        elif self.strategy == "group_by_label":
            batches = group_by_label_batches(order, self.labels, batch_size)
        else:
            batches = random_batches(order, batch_size)
        return [batch for batch in batches if len(batch) == batch_size] if drop_last else batches


class MultiDatasetBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields batches of global row indices (dataset offsets added); one epoch's plan is computed once and cached."""

    def __init__(self, datasets: list[DatasetBatching], batch_size: int, drop_last: bool, seed: int,
                 strategy: MultiDatasetSamplerName = "proportional", weights: list[float] | None = None) -> None:
        self.datasets, self.batch_size, self.drop_last, self.seed = datasets, batch_size, drop_last, seed
        self.strategy, self.weights = strategy, weights
        self.offsets = np.cumsum([0] + [d.size for d in datasets[:-1]]).tolist()
        self.epoch = 0
        self._plan: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.plan())

    def __iter__(self):
        yield from self.plan()

    def plan(self) -> list[list[int]]:
        if self._plan is None or self._plan[0] != self.epoch:
            self._plan = (self.epoch, self._make_plan(self.epoch))
        return self._plan[1]

    def _dataset_batches(self, position: int, generator: torch.Generator) -> list[list[int]]:
        offset = self.offsets[position]
        batches = self.datasets[position].batches(self.batch_size, self.drop_last, generator)
        return [[offset + row for row in batch] for batch in batches]

    def _make_plan(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        per_dataset = [self._dataset_batches(position, generator) for position in range(len(self.datasets))]
        if self.strategy == "round_robin":
            rounds = min(len(batches) for batches in per_dataset)
            return [batches[index] for index in range(rounds) for batches in per_dataset]
        if self.strategy == "weighted":
            return self._weighted(per_dataset, generator)
        # proportional: every batch once; the dataset of each slot drawn at random.
        sources = torch.tensor([p for p, batches in enumerate(per_dataset) for _ in batches], dtype=torch.long)
        sources = sources[torch.randperm(len(sources), generator=generator)].tolist()
        cursors = [0] * len(per_dataset)
        plan = []
        for position in sources:
            plan.append(per_dataset[position][cursors[position]])
            cursors[position] += 1
        return plan

    def _weighted(self, per_dataset: list[list[list[int]]], generator: torch.Generator) -> list[list[int]]:
        """As many batches as proportional; each slot's dataset drawn by weight; a dataset that runs out starts over."""
        total = sum(len(batches) for batches in per_dataset)
        choices = torch.multinomial(torch.tensor(self.weights, dtype=torch.float64), total, replacement=True,
                                    generator=generator).tolist()
        streams = [deque(batches) for batches in per_dataset]
        plan = []
        for position in choices:
            if not streams[position]:
                streams[position] = deque(self._dataset_batches(position, generator))
            plan.append(streams[position].popleft())
        return plan

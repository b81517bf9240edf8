"""The training batches of an epoch, behind one interface for in-memory and streamed data.

`set_epoch(epoch)` then `epoch_batches(skip)`: the epoch's batches on the device, without the first `skip`
(those a resumed run already trained on). In-memory data goes through accelerate's prepared DataLoader
(sharded between processes, batches moved to the device); a stream is split between processes by the
dataset itself, and its batches are moved here.
"""

import bisect
import itertools
from collections.abc import Iterable, Iterator
from typing import Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device

from embedtrain.data.samplers import DatasetBatching, MultiDatasetBatchSampler, text_keys
from embedtrain.data.training_data import Batch, Collator, PreparedDataset, StreamingBatches, TrainingRows
from embedtrain.recipe.training import TrainingConfig


class TrainingLoader(Protocol):
    batches_per_epoch: int | None
    """None for a stream, whose length is unknown."""

    def set_epoch(self, epoch: int) -> None: ...

    def batches_per_dataset(self) -> dict[str, int]:
        """Each dataset's batches in an epoch; empty when unknown (a stream)."""
        ...

    def epoch_batches(self, skip: int = 0) -> Iterable[Batch]: ...


class InMemoryLoader:
    """Batches of one or several in-memory datasets, each batch from one dataset, in the samplers' seeded order."""

    def __init__(self, accelerator: Accelerator, datasets: dict[str, PreparedDataset], config: TrainingConfig,
                 collator: Collator) -> None:
        sampler = MultiDatasetBatchSampler(
            [_batching(dataset, config.batch_sampler) for dataset in datasets.values()], config.batch_size,
            config.dataloader_drop_last, config.seed, config.multi_dataset_sampler,
            weights=[dataset.weight for dataset in datasets.values()])
        loader = torch.utils.data.DataLoader(TrainingRows(datasets), batch_sampler=sampler, collate_fn=collator,
                                             num_workers=config.dataloader_num_workers,
                                             pin_memory=torch.cuda.is_available())
        self.accelerator = accelerator
        self.sampler, self.names = sampler, list(datasets)
        self.loader = accelerator.prepare(loader)
        self.batches_per_epoch = len(self.loader)

    def batches_per_dataset(self) -> dict[str, int]:
        """Each dataset's batches in the first epoch's plan (of all processes together)."""
        counts = dict.fromkeys(self.names, 0)
        for batch in self.sampler.plan():
            counts[self.names[bisect.bisect_right(self.sampler.offsets, batch[0]) - 1]] += 1
        return counts

    def set_epoch(self, epoch: int) -> None:
        # Through the prepared DataLoader, whose own epoch counter would otherwise override the sampler's; and to the
        # sampler itself, which that DataLoader does not reach when it shards batches between processes: it looks for
        # the wrapped batch sampler's `.sampler` (torch's BatchSampler has one, ours has not), so with two processes or
        # more every epoch would replay epoch 0's batches. The reference's trainer reaches the sharded sampler too.
        self.loader.set_epoch(epoch)
        self.sampler.set_epoch(epoch)

    def epoch_batches(self, skip: int = 0) -> Iterable[Batch]:
        return self.accelerator.skip_first_batches(self.loader, skip) if skip else self.loader


class StreamLoader:
    """Batches of a streamed dataset (the only training dataset when there is one), read through a shuffle buffer."""

    batches_per_epoch = None

    def __init__(self, accelerator: Accelerator, dataset: PreparedDataset, config: TrainingConfig,
                 collator: Collator) -> None:
        self.device = accelerator.device
        self.batches = StreamingBatches(dataset, config.batch_size, config.dataloader_drop_last, config.seed,
                                        accelerator.process_index, accelerator.num_processes)
        self.loader = torch.utils.data.DataLoader(self.batches, batch_size=None, collate_fn=collator,
                                                  num_workers=config.dataloader_num_workers,
                                                  pin_memory=torch.cuda.is_available())

    def batches_per_dataset(self) -> dict[str, int]:
        return {}  # a stream's length is unknown

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def epoch_batches(self, skip: int = 0) -> Iterator[Batch]:
        for batch in itertools.islice(self.loader, skip, None):
            yield send_to_device(batch, self.device)  # send_to_device leaves non-tensors (a router's task) as they are


def build_training_loader(accelerator: Accelerator, datasets: dict[str, PreparedDataset], config: TrainingConfig,
                          collator: Collator) -> TrainingLoader:
    (first, *_) = datasets.values()
    if first.stream is not None:  # the recipe allows a stream only as the single training dataset
        return StreamLoader(accelerator, first, config, collator)
    return InMemoryLoader(accelerator, datasets, config, collator)


def _batching(dataset: PreparedDataset, strategy: str) -> DatasetBatching:
    batching = DatasetBatching(len(dataset.rows), strategy)
    if strategy == "no_duplicates":
        batching.keys = text_keys([dataset.rows.data.column(column) for column in dataset.mapping.input_columns])
    elif strategy == "group_by_label":
        batching.labels = dataset.rows.data.column(dataset.mapping.label).to_pylist()
    return batching

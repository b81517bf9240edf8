"""Training and eval datasets: loaded, checked against their loss's contract, batched one dataset at a time."""

import logging
from dataclasses import dataclass

import torch
from datasets import Dataset

from embedtrain.data.contract import ColumnContract, ColumnMapping, check_rows, resolve_columns
from embedtrain.data.source import load_source
from embedtrain.losses import loss_contract
from embedtrain.recipe.schema import Recipe

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset whose columns have been matched to the inputs of the loss it trains."""

    name: str
    rows: Dataset
    mapping: ColumnMapping
    contract: ColumnContract
    loss_name: str


def prepare_datasets(recipe: Recipe, split: str) -> dict[str, PreparedDataset]:
    """Load `datasets.<split>` and check each against its loss; raises DataError before any training."""
    prepared = {}
    for name, config in getattr(recipe.datasets, split).items():
        where = f"datasets.{split}.{name}"
        loss_name = recipe.loss_name_for(config)
        contract = loss_contract(recipe.losses[loss_name])
        rows = load_source(config, where)
        mapping = resolve_columns(rows.column_names, contract, config.columns, config.ignore_columns, where)
        check_rows(rows, mapping, contract, where)
        if mapping.inferred:
            logger.warning("%s: no `columns:` given; using %s (label by name, inputs by position)", where, mapping.describe())
        prepared[name] = PreparedDataset(name, rows, mapping, contract, loss_name)
    return prepared


class TrainingRows(torch.utils.data.Dataset):
    """All datasets behind one index space; a batch of indices always comes from a single dataset."""

    def __init__(self, datasets: dict[str, PreparedDataset]) -> None:
        self.datasets = list(datasets.values())
        self.offsets = []
        total = 0
        for dataset in self.datasets:
            self.offsets.append(total)
            total += len(dataset.rows)
        self.total = total

    def __len__(self) -> int:
        return self.total

    def locate(self, index: int) -> int:
        """Which dataset (position) holds global `index`."""
        return max(position for position, offset in enumerate(self.offsets) if offset <= index)

    def __getitems__(self, indices: list[int]) -> dict:
        position = self.locate(indices[0])
        dataset, offset = self.datasets[position], self.offsets[position]
        rows = dataset.rows[[index - offset for index in indices]]  # one Arrow read for the whole batch
        batch = {"dataset": dataset.name, "texts": [rows[column] for column in dataset.mapping.input_columns]}
        batch["labels"] = rows[dataset.mapping.label] if dataset.mapping.label else None
        batch["label_kind"] = dataset.contract.label
        return batch

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])


class ProportionalBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Shuffled batches of each dataset, datasets interleaved at random in proportion to their batch counts.

    Every batch holds rows of one dataset only. The order depends only on (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one.
    """

    def __init__(self, sizes: list[int], batch_size: int, drop_last: bool, seed: int) -> None:
        self.sizes, self.batch_size, self.drop_last, self.seed = sizes, batch_size, drop_last, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batch_count(self, size: int) -> int:
        return size // self.batch_size if self.drop_last else -(-size // self.batch_size)

    def __len__(self) -> int:
        return sum(self._batch_count(size) for size in self.sizes)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        per_dataset, offset = [], 0
        for size in self.sizes:
            order = (torch.randperm(size, generator=generator) + offset).tolist()
            batches = [order[start:start + self.batch_size] for start in range(0, size, self.batch_size)]
            per_dataset.append(batches[: self._batch_count(size)])
            offset += size
        sources = [position for position, batches in enumerate(per_dataset) for _ in batches]
        cursors = [0] * len(per_dataset)
        for position in torch.randperm(len(sources), generator=generator).tolist():
            dataset = sources[position]
            yield per_dataset[dataset][cursors[dataset]]
            cursors[dataset] += 1


class Collator:
    """Tokenizes each input column of a batch; labels become a tensor of the kind the loss expects
    (int64 class ids; otherwise float32, (batch,) for one number per row, (batch, k) for list labels)."""

    def __init__(self, tokenize) -> None:
        self.tokenize = tokenize

    def __call__(self, batch: dict) -> dict:
        labels = batch["labels"]
        if labels is not None:
            dtype = torch.long if batch["label_kind"] == "class" else torch.float32
            labels = torch.tensor(labels, dtype=dtype)
        return {"dataset": batch["dataset"], "features": [self.tokenize(texts) for texts in batch["texts"]], "labels": labels}


def eval_batches(dataset: PreparedDataset, batch_size: int, collator: Collator):
    """Batches of an eval dataset in order (no shuffling)."""
    rows = TrainingRows({dataset.name: dataset})
    for start in range(0, len(rows), batch_size):
        yield collator(rows.__getitems__(list(range(start, min(start + batch_size, len(rows))))))

"""Training and eval datasets: loaded, checked against their loss's contract, batched one dataset at a time."""

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypedDict

import torch
from datasets import Dataset, IterableDataset
from datasets.distributed import split_dataset_by_node
from torch import Tensor

from embedtrain.data.contract import ColumnContract, ColumnMapping, LabelKind


class RowBatch(TypedDict):
    """Rows of one dataset as text, before tokenization: what a DataLoader worker hands the collator."""

    dataset: str
    texts: list[list[str]]  # one list per input, in the loss's order
    prompts: tuple[str | None, ...]  # prompt text per input
    routes: tuple[str | None, ...]  # router task per input
    labels: list | None
    label_kind: LabelKind | None
    in_batch_negatives: bool


class Batch(TypedDict):
    """A collated batch: what a loss consumes as `loss(model, features, labels)`.

    `features` has one entry per input, in the loss's order: the tokenized features (a dict of tensors) for an
    embedder (Collator); the raw values (a list of texts, or of lists of texts for a list input) for a
    cross-encoder, which builds and tokenizes its pairs inside the loss (TextCollator). `labels`: a tensor, or for a
    cross-encoder's list label, one list of floats per row."""

    dataset: str
    features: list[dict[str, Tensor]] | list[list]
    labels: Tensor | list[list[float]] | None
    diagnostics: dict[str, float]  # host-side numbers about the batch, for the training log


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset whose columns have been matched to the inputs of the loss it trains."""

    name: str
    rows: Dataset
    mapping: ColumnMapping
    contract: ColumnContract
    loss_name: str
    prompts: tuple[str | None, ...] = ()  # prompt text per input (as mapping.inputs), None for none
    routes: tuple[str | None, ...] = ()  # router task per input (as mapping.inputs), for models with a Router
    weight: float = 1.0  # share of the batches under the weighted multi-dataset sampler
    stream: IterableDataset | None = None  # set when the rows are read lazily (`rows` is then a sample)

    def batch(self, rows: dict[str, list]) -> RowBatch:
        """A batch for the collator from `rows` (column -> values) of this dataset."""
        unset = (None,) * len(self.mapping.inputs)
        return RowBatch(dataset=self.name, texts=[rows[column] for column in self.mapping.input_columns],
                        prompts=self.prompts or unset, routes=self.routes or unset,
                        labels=rows[self.mapping.label] if self.mapping.label else None,
                        label_kind=self.contract.label, in_batch_negatives=self.contract.in_batch_negatives)


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

    def __getitems__(self, indices: list[int]) -> RowBatch:
        position = self.locate(indices[0])
        dataset, offset = self.datasets[position], self.offsets[position]
        return dataset.batch(dataset.rows[[index - offset for index in indices]])  # one Arrow read per batch

    def __getitem__(self, index: int) -> RowBatch:
        return self.__getitems__([index])


SHUFFLE_BUFFER = 10_000


class StreamingBatches(torch.utils.data.IterableDataset):
    """Batches of a streamed dataset: rows shuffled through a buffer (seeded, per epoch), split between processes."""

    def __init__(self, dataset: PreparedDataset, batch_size: int, drop_last: bool, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.dataset, self.batch_size, self.drop_last, self.seed = dataset, batch_size, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[RowBatch]:
        stream = self.dataset.stream.shuffle(seed=self.seed, buffer_size=SHUFFLE_BUFFER)
        stream.set_epoch(self.epoch)
        if self.world_size > 1:
            stream = split_dataset_by_node(stream, rank=self.rank, world_size=self.world_size)
        for rows in stream.iter(batch_size=self.batch_size, drop_last_batch=self.drop_last):
            yield self.dataset.batch(rows)


Tokenize = Callable[[list[str], str | None, str | None], dict[str, Tensor]]
"""(texts, prompt, route) -> features: the model's tokenization of one input column."""


class Collator:
    """Tokenizes each input column of a batch (with its prompt, and its route for a model with a Router); labels
    become a tensor of the kind the loss expects (int64 class ids; otherwise float32, (batch,) for one number per
    row, (batch, k) for list labels)."""

    def __init__(self, tokenize: Tokenize) -> None:
        self.tokenize = tokenize

    def __call__(self, batch: RowBatch) -> Batch:
        labels = label_tensor(batch["labels"], batch["label_kind"])
        features = [self.tokenize(texts, prompt, route)
                    for texts, prompt, route in zip(batch["texts"], batch["prompts"], batch["routes"])]
        return Batch(dataset=batch["dataset"], features=features, labels=labels,
                     diagnostics=batch_diagnostics(batch["texts"], batch["in_batch_negatives"]))


def label_tensor(labels: list | None, kind: LabelKind | None) -> Tensor | None:
    """A batch's labels as the loss expects them: int64 class ids; otherwise float32, (batch,) for one number per row,
    (batch, k) for list labels of one length."""
    if labels is None:
        return None
    return torch.tensor(labels, dtype=torch.long if kind == "class" else torch.float32)


VARIABLE_LENGTH_LABEL = "list_scores"
"""The label kind of one score per document of a row's list input: its rows differ in length, so no tensor holds them."""


class TextCollator:
    """Collation for a model that tokenizes inside its loss (a cross-encoder, whose losses build the pairs): each input
    column as its raw values (a list input as one list of texts per row), the dataset's prompt prepended to the first
    input (the first text of every pair the loss builds, as the reference prepends it); labels as Collator makes
    them, except the variable-length `list_scores`, which stay one list of floats per row."""

    def __call__(self, batch: RowBatch) -> Batch:
        columns = [list(column) for column in batch["texts"]]
        prompt = batch["prompts"][0] if batch["prompts"] else None
        if prompt:
            columns[0] = [prompt + text for text in columns[0]]
        labels = batch["labels"]
        if batch["label_kind"] == VARIABLE_LENGTH_LABEL:
            labels = [[float(value) for value in row] for row in labels]
        else:
            labels = label_tensor(labels, batch["label_kind"])
        return Batch(dataset=batch["dataset"], features=columns, labels=labels,
                     diagnostics=batch_diagnostics(batch["texts"], batch["in_batch_negatives"]))


def _texts(column: list) -> list[str]:
    """A column's texts, a list input's lists flattened."""
    return [text for value in column for text in (value if isinstance(value, list) else [value])]


def batch_diagnostics(columns: list[list], in_batch_negatives: bool) -> dict[str, float]:
    """How much a batch teaches: the share of its texts that are repeats, and, for in-batch-negative losses,
    how many candidates each anchor can really tell apart from its positive (copies of it are false negatives)."""
    texts = [text for column in columns for text in _texts(column)]
    diagnostics = {"duplicate_rate": 1.0 - len(set(texts)) / len(texts)}
    if in_batch_negatives:
        candidates = Counter(text for column in columns[1:] for text in _texts(column))
        total = sum(candidates.values())
        diagnostics["negatives_per_anchor"] = sum(total - candidates[p] for p in columns[1]) / len(columns[1])
    return diagnostics


def eval_batches(dataset: PreparedDataset, batch_size: int, collator: Collator) -> Iterator[Batch]:
    """Batches of an eval dataset in order (no shuffling)."""
    rows = TrainingRows({dataset.name: dataset})
    for start in range(0, len(rows), batch_size):
        yield collator(rows.__getitems__(list(range(start, min(start + batch_size, len(rows))))))

"""How mining and scoring report progress, without printing: the command line shows it as progress bars."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from torch import nn


class Progress(Protocol):
    def stage(self, name: str, total: int) -> None:
        """A new stage (e.g. "embedding the corpus") of `total` units (texts, queries or pairs) begins."""

    def advance(self, units: int) -> None:
        """`units` more of the current stage are done."""


class NoProgress:
    def stage(self, name: str, total: int) -> None:
        pass

    def advance(self, units: int) -> None:
        pass


@contextmanager
def counting_forward_passes(model: nn.Module, progress: Progress) -> Iterator[None]:
    """Advance `progress` by the rows of every forward pass of `model` (a batch of texts embedded).

    A hook rather than a callback through `encode`: the embedder keeps its one packed, length-sorted pass over all
    the texts, which cutting them into slices to report progress between would break up."""
    handle = model.register_forward_hook(lambda module, inputs, output: progress.advance(
        len(output["sentence_embedding"])))
    try:
        yield
    finally:
        handle.remove()

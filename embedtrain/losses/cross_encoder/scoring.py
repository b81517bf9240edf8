"""What the cross-encoder losses share: the activations a recipe can name, and scoring a batch's pairs."""

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from embedtrain.losses.registry import PairScorer

PAIR_INPUTS = ("sentence1", "sentence2")
"""The inputs of the losses over one pair per row, named as the dense pair losses name theirs."""

Activation = Literal["identity", "sigmoid", "tanh"]
"""The function applied to the model's logits before the loss, by name (the reference takes any module)."""

ACTIVATIONS: dict[Activation, Callable[[Tensor], Tensor]] = {
    "identity": lambda logits: logits,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def activation_field(default: Activation) -> Any:
    return Field(default, description="applied to the logits before the loss: identity, sigmoid or tanh")


def activate(name: Activation, logits: Tensor) -> Tensor:
    return ACTIVATIONS[name](logits)


def pair_scores(model: PairScorer, pairs: Sequence[tuple[str, str]], chunk: int | None = None) -> Tensor:
    """The model's single score of each pair, shape (len(pairs),): scored `chunk` pairs per forward pass (all at
    once by default) to bound the activation memory; the scores are the same either way."""
    chunk = chunk or len(pairs)
    return torch.cat([model.score_pairs(pairs[begin:begin + chunk]).view(-1)
                      for begin in range(0, len(pairs), chunk)])


def column_scores(model: PairScorer, first: Sequence[str], columns: Sequence[Sequence[str]]) -> Tensor:
    """The score of (first[i], column[i]) for every row i of every column, shape (rows, columns): one forward pass
    per column, as the reference scores them (each pass padded to its own longest pair)."""
    return torch.stack([pair_scores(model, list(zip(first, column))) for column in columns], dim=1)


def column_pairs(first: Sequence[str], columns: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """(first[i], column[i]) for every row i of every column, column after column: the scores of column c are
    then the rows c*B .. c*B + B - 1 of the result (B rows)."""
    return [(text, other) for column in columns for text, other in zip(first, column)]

"""The dense loss parity harness: a case (our loss entry, a builder of the reference's loss, the batch), both libraries'
model and loss built from the same checkpoint, and both run on the same tokenized batch."""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from torch import nn

from embedtrain.losses import LOSSES, build_loss, total_loss
from embedtrain.models.io import load_model


@dataclass
class Case:
    params: dict
    reference: Callable[[SentenceTransformer], nn.Module]
    columns: list[list[str]]
    labels: torch.Tensor | None = None
    own_parameters: list[tuple[str, str]] = field(default_factory=list)
    """(our loss attribute, reference loss attribute) of trainable loss parameters: copied, then gradients compared."""


def build_both(case: Case, checkpoint: Path):
    torch.manual_seed(0)
    st_model = SentenceTransformer(str(checkpoint), device="cpu").train()
    st_loss = case.reference(st_model)
    model = load_model(checkpoint).train()
    loss = build_loss(LOSSES[case.params["type"]].params_model(**case.params), model)
    for ours, theirs in case.own_parameters:
        with torch.no_grad():
            target = getattr(loss, ours)
            source = getattr(st_loss, theirs)
            if isinstance(target, nn.Module):
                target.load_state_dict(source.state_dict())
            else:
                target.copy_(source)
    return st_model, st_loss, model, loss


def run_both(case: Case, st_model, st_loss, model, loss, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    st_features = [st_model.preprocess(texts) for texts in case.columns]
    features = [model.tokenize(texts) for texts in case.columns]
    for st_column, column in zip(st_features, features):
        assert torch.equal(column["input_ids"], st_column["input_ids"])
    random.seed(seed)
    torch.manual_seed(seed)
    expected = total_loss(st_loss(st_features, case.labels))
    random.seed(seed)
    torch.manual_seed(seed)
    value = total_loss(loss(model, features, case.labels))
    expected.backward()
    value.backward()
    return value, expected

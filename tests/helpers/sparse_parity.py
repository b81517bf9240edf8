"""The sparse loss parity harness: a case (our loss entry, a builder of the reference's loss, the batch, which tiny
sparse model), and a run of either library's loss on the same model object that returns the loss terms and the
gradients, leaving the model as it found it."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from sentence_transformers.sparse_encoder import SparseEncoder
from torch import nn

from embedtrain.losses import total_loss

DOCUMENT_WEIGHT, QUERY_WEIGHT = 0.3, 0.5
MNRL = {"type": "SparseMultipleNegativesRankingLoss"}


@dataclass
class SparseCase:
    params: dict
    reference: Callable[[SparseEncoder], nn.Module]
    columns: list[list[str]]
    labels: torch.Tensor | None = None
    model: str = "splade"
    reference_labels: object = None
    """The labels as the reference's loss must receive them, when that differs from `labels` (see splade-mse)."""


def preprocess(model: SparseEncoder, columns: list[list[str]], inference_free: bool) -> list[dict]:
    """Tokenized columns, fresh for each run (the reference's modules write their outputs into the features). With a
    Router, the first column is routed as queries and the others as documents, as a router mapping makes the
    collator do (`task` in the features)."""
    if not inference_free:
        return [model.preprocess(texts) for texts in columns]
    return [model.preprocess(texts, task="query" if index == 0 else "document") for index, texts in enumerate(columns)]


def run_loss(loss: Callable, model: SparseEncoder, case: SparseCase, labels=None) -> tuple[dict[str, torch.Tensor], dict]:
    """The loss's terms on the case's batch, and the gradients it gives the model's parameters. The model's buffers
    (the autoencoder's dead-latent statistics, which every training forward updates) are restored afterwards,
    so every run starts from the same model."""
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    terms = loss(preprocess(model, case.columns, case.model == "inference-free"), case.labels if labels is None else labels)
    terms = terms if isinstance(terms, dict) else {"loss": terms}
    total_loss(terms).backward()
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            buffer.copy_(buffers[name])
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    return {name: value.detach() for name, value in terms.items()}, grads


def assert_same_terms(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        assert actual[name].item() == pytest.approx(value.item(), rel=1e-5, abs=1e-9), name

"""Losses: importing this package imports every module in it (dense losses, then `sparse/`, then `cross_encoder/`),
which registers each loss in `LOSSES`. Adding a loss is adding a module (see README, "Architecture"); no list to
extend."""

import importlib
import pkgutil

from embedtrain.losses import cross_encoder, sparse
from embedtrain.losses.registry import (
    LOSSES,
    CrossEncoderLoss,
    EmbeddingLoss,
    LossParams,
    build_loss,
    embedding_loss_config_union,
    loss_config_union,
    loss_contract,
    resolve_wrapped_losses,
    saved_similarity,
    total_loss,
)

for _package in (__name__, sparse.__name__, cross_encoder.__name__):
    for _module in pkgutil.iter_modules(importlib.import_module(_package).__path__):
        if not _module.ispkg:
            importlib.import_module(f"{_package}.{_module.name}")

from embedtrain.losses.sparse.inner_loss import sparse_loss_config_union  # noqa: E402 (needs every loss registered)

# Wrappers take registered losses as their `loss:`; those unions exist only now that every loss is registered.
# A dense wrapper hands its loss embeddings, so it wraps embedding losses only, never a cross-encoder's.
resolve_wrapped_losses({"LossConfig": embedding_loss_config_union(), "SparseLossConfig": sparse_loss_config_union()})

__all__ = ["LOSSES", "CrossEncoderLoss", "EmbeddingLoss", "LossParams", "build_loss", "loss_config_union", "loss_contract",
           "saved_similarity", "total_loss"]

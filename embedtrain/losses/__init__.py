"""Losses: importing this package imports every module in it (dense losses, then `sparse/`), which registers each
loss in `LOSSES`. Adding a loss is adding a module (see README, "Architecture"); no list to extend."""

import importlib
import pkgutil

from embedtrain.losses import sparse
from embedtrain.losses.registry import (
    LOSSES,
    EmbeddingLoss,
    LossParams,
    build_loss,
    loss_config_union,
    loss_contract,
    resolve_wrapped_losses,
    saved_similarity,
    total_loss,
)

for _package in (__name__, sparse.__name__):
    for _module in pkgutil.iter_modules(importlib.import_module(_package).__path__):
        if not _module.ispkg:
            importlib.import_module(f"{_package}.{_module.name}")

from embedtrain.losses.sparse.inner_loss import sparse_loss_config_union  # noqa: E402 (needs every loss registered)

# Wrappers take registered losses as their `loss:`; those unions exist only now that every loss is registered.
resolve_wrapped_losses({"LossConfig": loss_config_union(), "SparseLossConfig": sparse_loss_config_union()})

__all__ = ["LOSSES", "EmbeddingLoss", "LossParams", "build_loss", "loss_config_union", "loss_contract",
           "saved_similarity", "total_loss"]

"""Cross-encoder evaluators (the reference's `cross_encoder/evaluation`): each scores (text, text) pairs with the
model's `predict`. Importing this package imports every module in it, which registers each evaluator."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

"""The names `training.learning_rate_mapping` patterns are matched against (and `embedtrain list modules` shows).

Every parameter of a model has two names, and a pattern selects a parameter when `re.search` finds it in either:

- its path: the model's own `named_parameters()` name, e.g. `0.sub_modules.query.0.weight` or
  `0.auto_model.bert.encoder.layer.1.attention.self.query.weight` (the reference's names, minus its
  loss-wrapper prefix `model.`);
- its typed name: the class of the embedtrain module that owns it, then the name inside that module, e.g.
  `SparseStaticEmbedding.weight`, `MLMTransformer.auto_model.cls.predictions.bias`,
  `SparseAutoEncoder.latent_bias`. So `SparseStaticEmbedding\\.weight` (the reference's documented example,
  which matches nothing there) selects the query weights of inference-free SPLADE here. A model that is one
  module (CrossEncoder) owns its parameters itself: `CrossEncoder.model.classifier.weight`.
"""

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class NamedParameter:
    path: str
    typed_name: str
    parameter: nn.Parameter


def named_parameters(model: nn.Module) -> list[NamedParameter]:
    """Every parameter of `model` (trainable or not) with its path and its typed name, in model order."""
    owners = {name: type(module).__name__ for name, module in model.named_modules() if hasattr(module, "st_type")}
    named = []
    for path, parameter in model.named_parameters():
        # The innermost embedtrain module (one with a sentence-transformers type) whose path prefixes this one;
        # the model itself when none does.
        owner = max((name for name in owners if path.startswith(f"{name}.")), key=len, default=None)
        typed_name = f"{type(model).__name__}.{path}" if owner is None else f"{owners[owner]}.{path[len(owner) + 1:]}"
        named.append(NamedParameter(path, typed_name, parameter))
    return named

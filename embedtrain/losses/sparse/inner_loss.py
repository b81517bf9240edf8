"""The losses a sparse wrapper (SpladeLoss, CachedSpladeLoss, CSRLoss) can wrap: the sparse losses of the catalogue,
those whose class declares `sparse_inner_loss`."""

from typing import TYPE_CHECKING, Any

from embedtrain.losses.registry import LOSSES, LossParams, params_union
from embedtrain.losses.sparse.sparse_multiple_negatives_ranking import SparseMultipleNegativesRankingParams

if TYPE_CHECKING:
    SparseLossConfig = LossParams
else:
    # A sparse wrapper's `loss:`: a forward reference, resolved by `registry.resolve_wrapped_losses`.
    SparseLossConfig = "SparseLossConfig"


def sparse_loss_config_union() -> Any:
    """The discriminated union of the registered sparse inner losses' parameters, the default first: an error
    message lists the known types in this order, so it suggests the default before the others."""
    inner = [spec.params_model for spec in LOSSES.values() if spec.loss_class.sparse_inner_loss]
    inner.sort(key=lambda params: params is not SparseMultipleNegativesRankingParams)
    return params_union(inner)


def default_sparse_loss() -> SparseMultipleNegativesRankingParams:
    """The reference's default inner loss: SparseMultipleNegativesRankingLoss with its defaults."""
    return SparseMultipleNegativesRankingParams(type="SparseMultipleNegativesRankingLoss")

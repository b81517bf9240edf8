"""The losses a sparse wrapper (SpladeLoss, CachedSpladeLoss, CSRLoss) can wrap: the sparse losses of the catalogue."""

from typing import Annotated, Union

from pydantic import Field

from embedtrain.losses.sparse.sparse_angle import SparseAnglEParams
from embedtrain.losses.sparse.sparse_cosent import SparseCoSENTParams
from embedtrain.losses.sparse.sparse_cosine_similarity import SparseCosineSimilarityParams
from embedtrain.losses.sparse.sparse_distill_kl_div import SparseDistillKLDivParams
from embedtrain.losses.sparse.sparse_margin_mse import SparseMarginMSEParams
from embedtrain.losses.sparse.sparse_mse import SparseMSEParams
from embedtrain.losses.sparse.sparse_multiple_negatives_ranking import SparseMultipleNegativesRankingParams
from embedtrain.losses.sparse.sparse_triplet import SparseTripletParams

SparseLossConfig = Annotated[
    # Union[...]: the `X | Y` syntax does not take a discriminator annotation this readably.
    Union[  # noqa: UP007
        SparseMultipleNegativesRankingParams, SparseMarginMSEParams, SparseDistillKLDivParams, SparseMSEParams,
        SparseCoSENTParams, SparseAnglEParams, SparseCosineSimilarityParams, SparseTripletParams,
    ],
    Field(discriminator="type"),
]


def default_sparse_loss() -> SparseMultipleNegativesRankingParams:
    """The reference's default inner loss: SparseMultipleNegativesRankingLoss with its defaults."""
    return SparseMultipleNegativesRankingParams(type="SparseMultipleNegativesRankingLoss")

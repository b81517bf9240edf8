from typing import Literal

from pydantic import Field, model_validator

from embedtrain.losses.adaptive_layer import AdaptiveLayerLoss, AdaptiveLayerOptions, refuse_self_embedding_loss
from embedtrain.losses.matryoshka import MatryoshkaLoss, MatryoshkaOptions, MatryoshkaParams
from embedtrain.losses.registry import EmbeddingLoss, register_loss
from embedtrain.models.embedder import SentenceEmbedder


class Matryoshka2dParams(MatryoshkaOptions, AdaptiveLayerOptions):
    type: Literal["Matryoshka2dLoss"]
    n_dims_per_step: int = Field(1, description="dimensions sampled per step and layer (-1: all)")

    @model_validator(mode="after")
    def _composable(self) -> "Matryoshka2dParams":
        refuse_self_embedding_loss(self)
        return self


@register_loss
class Matryoshka2dLoss(AdaptiveLayerLoss):
    """Matryoshka over both axes: embedding size and number of layers (2D Matryoshka Sentence Embeddings, Li et al., 2024).

    AdaptiveLayerLoss(MatryoshkaLoss(loss)): every sampled layer's embeddings are trained at the sampled dimensions.
    """

    Params = Matryoshka2dParams
    not_truncatable = "it must be the outermost loss"

    def build_layer_loss(self, params: Matryoshka2dParams, model: SentenceEmbedder) -> EmbeddingLoss:
        """MatryoshkaLoss around the wrapped loss, with this loss's Matryoshka options."""
        matryoshka = MatryoshkaParams(type="MatryoshkaLoss", loss=params.loss, matryoshka_dims=params.matryoshka_dims,
                                      matryoshka_weights=params.matryoshka_weights, n_dims_per_step=params.n_dims_per_step)
        return MatryoshkaLoss(matryoshka, model)

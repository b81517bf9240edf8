from typing import Literal

from pydantic import Field, model_validator

from embedtrain.errors import RecipeError
from embedtrain.losses.adaptive_layer import CACHED_LOSSES, AdaptiveLayerLoss, AdaptiveLayerOptions
from embedtrain.losses.matryoshka import MatryoshkaLoss, MatryoshkaOptions
from embedtrain.losses.registry import build_loss, register_loss
from embedtrain.modules import Transformer


class Matryoshka2dParams(MatryoshkaOptions, AdaptiveLayerOptions):
    type: Literal["Matryoshka2dLoss"]
    n_dims_per_step: int = Field(1, description="dimensions sampled per step and layer (-1: all)")

    @model_validator(mode="after")
    def _composable(self) -> "Matryoshka2dParams":
        if self.loss.type in CACHED_LOSSES:
            raise ValueError(f"loss: Matryoshka2dLoss cannot wrap {self.loss.type} (it embeds the batch itself)")
        return self


@register_loss(Matryoshka2dParams, None)
class Matryoshka2dLoss(AdaptiveLayerLoss):
    """Matryoshka over both axes: embedding size and number of layers (2D Matryoshka Sentence Embeddings, Li et al., 2024).

    AdaptiveLayerLoss(MatryoshkaLoss(loss)): every sampled layer's embeddings are trained at the sampled dimensions.
    """

    @classmethod
    def from_params(cls, params: Matryoshka2dParams, model) -> "Matryoshka2dLoss":
        if not isinstance(model.input_module, Transformer):
            raise RecipeError(f"{params.type} trains the layers of a transformer; this model has none (a static model)")
        matryoshka = MatryoshkaLoss(build_loss(params.loss, model), model.embedding_dimension,
                                    params.matryoshka_dims, params.matryoshka_weights, params.n_dims_per_step)
        return cls(matryoshka, **params.model_dump(include=set(AdaptiveLayerOptions.model_fields) - {"type"}))

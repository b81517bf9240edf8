import math
import random
from typing import Literal

import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from embedtrain.errors import RecipeError
from embedtrain.losses.embedder_views import LayerEmbedder
from embedtrain.losses.gradcache import GradCacheLoss
from embedtrain.losses.registry import (
    LOSSES,
    Embedder,
    EmbeddingLoss,
    LossConfig,
    LossParams,
    build_loss,
    register_loss,
    total_loss,
)
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.modules import Transformer

LayerWeighting = Literal["uniform", "log", "linear"]


class AdaptiveLayerOptions(LossParams):
    n_layers_per_step: int = Field(1, description="earlier layers sampled per step (-1 or 0: all)")
    last_layer_weight: float = Field(1.0, description="weight of the loss on the final layer")
    prior_layers_weight: float = Field(1.0, description="weight of the mean loss over the sampled earlier layers")
    kl_div_weight: float = Field(1.0, description="weight of the KL term pulling earlier layers toward the final one")
    kl_temperature: float = Field(0.3, ge=0, description="temperature of the KL term (0: no KL term)")
    layer_weighting: LayerWeighting = Field("uniform", description="per-layer weight: 1, 1/(1+ln(1+l)) or 1/(1+l)")


class AdaptiveLayerParams(AdaptiveLayerOptions):
    type: Literal["AdaptiveLayerLoss"]
    loss: LossConfig = Field(description="the loss to apply at every layer, e.g. {type: MultipleNegativesRankingLoss}")

    @model_validator(mode="after")
    def _composable(self) -> "AdaptiveLayerParams":
        refuse_self_embedding_loss(self)
        return self


def refuse_self_embedding_loss(params: AdaptiveLayerOptions) -> None:
    """A layer-wise wrapper hands its loss a view of one layer's embeddings: a loss that embeds the batch itself
    (GradCache's mini-batches, another layer-wise wrapper) would not use it."""
    if issubclass(LOSSES[params.loss.type].loss_class, (GradCacheLoss, AdaptiveLayerLoss)):
        raise ValueError(f"loss: {params.type} cannot wrap {params.loss.type} (it embeds the batch itself)")


@register_loss
class AdaptiveLayerLoss(EmbeddingLoss):
    """Trains the earlier transformer layers to produce usable embeddings too, so the model can be cut at inference (2DMSE / ESE).

    `L = w_last·L(final) + w_prior·(1/|S|)·sum_{l in S} ω_l·L(layer l) + w_kl·T·sum_{l in S} KL(softmax(e_final/T) || softmax(e_l/T))`
    with S the sampled earlier layers (0 = the embedding layer), ω_l the layer weighting, and the
    final embeddings detached in the KL term (Li et al., 2024).
    """

    Params = AdaptiveLayerParams
    contract = None
    not_truncatable = "it must be the outermost loss (use Matryoshka2dLoss)"

    def __init__(self, params: AdaptiveLayerParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        if not isinstance(model.input_module, Transformer):
            raise RecipeError(f"{params.type} trains the layers of a transformer; this model has none (a static model)")
        self.loss = self.build_layer_loss(params, model)

    def build_layer_loss(self, params: AdaptiveLayerParams, model: SentenceEmbedder) -> EmbeddingLoss:
        """The loss applied to every layer's embeddings: the wrapped loss."""
        return build_loss(params.loss, model)

    def layer_weight(self, layer: int) -> float:
        if self.params.layer_weighting == "log":
            return 1.0 / (1.0 + math.log(1 + layer))
        if self.params.layer_weighting == "linear":
            return 1.0 / (1 + layer)
        return 1.0

    def targets(self, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor | None:
        return self.loss.targets(features, labels)

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        labels = self.targets(features, labels)  # once per step (a teacher's embeddings), not once per layer
        view = LayerEmbedder(model)
        options = self.params
        loss = total_loss(self.loss(view, features, labels)) * options.last_layer_weight
        if options.kl_temperature > 0:
            final = F.softmax(view.take_embeddings() / options.kl_temperature, dim=-1).detach()
        layers = list(range(view.num_layers - 1))  # every layer but the last (index 0 is the embedding layer)
        if 0 < options.n_layers_per_step < len(layers):
            layers = random.sample(layers, options.n_layers_per_step)
        for layer in layers:
            view.layer = layer
            layer_loss = total_loss(self.loss(view, features, labels))
            loss = loss + layer_loss * self.layer_weight(layer) / len(layers) * options.prior_layers_weight
            if options.kl_temperature > 0:
                log_probs = F.log_softmax(view.take_embeddings() / options.kl_temperature, dim=-1)
                loss = loss + F.kl_div(log_probs, final, reduction="batchmean") * options.kl_temperature * options.kl_div_weight
        return loss

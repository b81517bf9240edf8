"""Views of a model that modifier losses hand to the loss they wrap, in place of the model itself.

The wrapped loss calls the view exactly as it would call the model (`view(features)` ->
`sentence_embedding`), so any loss composes with any modifier without knowing about it.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from embedtrain.errors import TrainingError
from embedtrain.losses.registry import Embedder
from embedtrain.models.embedder import SentenceEmbedder


def truncate(embeddings: Tensor, dim: int) -> Tensor:
    """The first `dim` dimensions, L2-normalised (a Matryoshka embedding)."""
    return F.normalize(embeddings[..., :dim], p=2, dim=-1)


class TruncatedEmbedder:
    """Embeddings cut to `dim` dimensions. The model runs once per call of the first pass (`record`); later
    passes replay those outputs in the same call order, so every dimension costs one loss, not one forward."""

    def __init__(self, model: Embedder) -> None:
        self.model = model
        self.outputs: list[dict[str, Tensor]] = []
        self.dim = 0
        self.passes = 0
        self.calls = 0

    def start_pass(self, dim: int) -> None:
        self.dim, self.calls = dim, 0
        self.passes += 1

    @property
    def recording(self) -> bool:
        return self.passes == 1

    def __call__(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.recording:
            self.outputs.append(self.model(features))
        output = self.outputs[self.calls]
        self.calls += 1
        return {**output, "sentence_embedding": truncate(output["sentence_embedding"], self.dim)}


class LayerEmbedder:
    """Embeddings pooled from one transformer layer. The first pass (layer None) runs the whole model, keeping every
    layer's token embeddings in the features; a pass with `layer = i` re-runs only the modules after the transformer
    on layer i's. Every `sentence_embedding` produced is collected (`take_embeddings`) for the KL term."""

    def __init__(self, model: Embedder) -> None:
        if not isinstance(model, SentenceEmbedder):
            raise TrainingError("AdaptiveLayerLoss must be the outermost loss (it needs the model's transformer layers); "
                                "wrap Matryoshka inside it, or use Matryoshka2dLoss")
        self.model = model
        self.layer: int | None = None
        self.num_layers = 0
        self.embeddings: list[Tensor] = []

    def __call__(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        transformer, *rest = list(self.model)
        if self.layer is None:
            output = transformer.forward_all_layers(features)
            self.num_layers = len(output["all_layer_embeddings"])
        else:
            output = {**features, "token_embeddings": features["all_layer_embeddings"][self.layer]}
        for module in rest:
            output = module(output)
        self.embeddings.append(output["sentence_embedding"])
        return output

    def take_embeddings(self) -> Tensor:
        """Every embedding produced since the last call, concatenated (batch of all columns)."""
        embeddings, self.embeddings = self.embeddings, []
        return torch.cat(embeddings, dim=0)

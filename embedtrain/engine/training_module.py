"""The module training runs: the model and its losses as one nn.Module, and the batches it takes."""

from collections.abc import Callable

from torch import nn

from embedtrain.data.training_data import Batch
from embedtrain.losses import EmbeddingLoss, total_loss
from embedtrain.models import SentenceEmbedder
from embedtrain.models.cross_encoder import CrossEncoder

Model = SentenceEmbedder | CrossEncoder


class TrainingModule(nn.Module):
    """The model and every loss in one module, so that one DDP wrapper covers all trainable parameters."""

    def __init__(self, model: Model, losses: dict[str, EmbeddingLoss], loss_of_dataset: dict[str, str]) -> None:
        super().__init__()
        self.model = model
        self.losses = nn.ModuleDict(losses)
        self.loss_of_dataset = loss_of_dataset

    def forward(self, batch: Batch | None = None, evaluate: Callable[[Model], dict[str, float]] | None = None):
        """The loss of `batch`; or, given `evaluate`, `evaluate(self.model)`: evaluation under FSDP2, whose root module
        gathers its own parameters (the embeddings, a pooler, a head) only inside its own forward call."""
        if evaluate is not None:
            return evaluate(self.model)
        return total_loss(self.losses[self.loss_of_dataset[batch["dataset"]]](self.model, batch["features"], batch["labels"]))

    def set_training_progress(self, step: int, total_steps: int) -> None:
        """Tell every loss how far training is (for scheduled loss terms, e.g. the SPLADE regulariser warm-up)."""
        for loss in self.losses.values():
            loss.set_training_progress(step, total_steps)


def batch_rows(batch: Batch) -> int:
    """The rows (examples) in `batch`."""
    first = batch["features"][0]
    if not isinstance(first, dict):  # a cross-encoder's raw texts
        return len(first)
    return len(first["offsets"] if "offsets" in first else first["input_ids"])  # static models: flat input_ids

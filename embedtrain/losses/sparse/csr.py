from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from embedtrain.errors import TrainingError
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams, build_loss, register_loss
from embedtrain.losses.sparse.inner_loss import SparseLossConfig, default_sparse_loss
from embedtrain.models.embedder import SentenceEmbedder

RECONSTRUCTION_KEYS = ("sentence_embedding_backbone", "decoded_embedding_k", "decoded_embedding_4k",
                       "decoded_embedding_aux", "decoded_embedding_k_pre_bias")
"""What a CSR model's sparse autoencoder outputs besides `sentence_embedding` while training (the reference's names)."""


class CSRParams(LossParams):
    type: Literal["CSRLoss"]
    loss: SparseLossConfig = Field(default_factory=default_sparse_loss,
                                   description="the sparse loss on the sparse embeddings (default SparseMultipleNegativesRankingLoss)")
    beta: float = Field(0.1, ge=0, description="weight of the auxiliary reconstruction term (dead latents)")
    gamma: float = Field(1.0, ge=0, description="weight of the wrapped loss (the CSR example uses 0.1)")


def normalized_mse(reconstruction: Tensor, target: Tensor) -> Tensor:
    """MSE relative to that of predicting the batch mean; plain MSE when the batch has no variance."""
    variance = F.mse_loss(target.mean(dim=0).expand_as(target), target)
    constant = (variance == 0) | (target == target[:1]).all()
    return F.mse_loss(reconstruction, target) / torch.where(constant, 1.0, variance)


def reconstruction_terms(outputs: list[dict[str, Tensor]], beta: float) -> dict[str, Tensor]:
    """CSR's autoencoder terms, each averaged over the input columns:

    - `reconstruction_loss_k`: MSE(x, decode(top-k latents)), x the dense backbone embedding;
    - `reconstruction_loss_4k`: MSE(x, decode(top-4k latents)) / 8;
    - `reconstruction_loss_aux`: beta · NMSE(decode(top-k_aux dead latents), x - decode(top-k latents) + pre-bias),
      which makes dead latents learn the residual (Gao et al., 2024); its target is not backpropagated.
    """
    k_terms, four_k_terms, aux_terms = [], [], []
    for output in outputs:
        backbone = output["sentence_embedding_backbone"]
        k_terms.append(F.mse_loss(backbone, output["decoded_embedding_k"]))
        four_k_terms.append(F.mse_loss(backbone, output["decoded_embedding_4k"]))
        auxiliary = output["decoded_embedding_aux"]
        residual = backbone - output["decoded_embedding_k_pre_bias"].detach()
        # No auxiliary latents (k_aux 0): no auxiliary term.
        aux_terms.append(torch.zeros_like(k_terms[-1]) if auxiliary is None else normalized_mse(auxiliary, residual))
    return {"reconstruction_loss_k": torch.stack(k_terms).mean(),
            "reconstruction_loss_4k": torch.stack(four_k_terms).mean() / 8.0,
            "reconstruction_loss_aux": beta * torch.stack(aux_terms).mean()}


@register_loss
class CSRLoss(EmbeddingLoss):
    """Trains a CSR model (a sparse autoencoder on a dense encoder): reconstruction terms plus a sparse loss.

    `L = L_k + L_4k / 8 + beta·L_aux + gamma·L_inner` (Wen et al., 2025, "Beyond Matryoshka"): the top-k
    and top-4k latents must reconstruct the dense embedding, dead latents learn the residual, and the
    sparse embeddings (top-k latents) train with the wrapped loss. Returns the terms
    `reconstruction_loss_k`, `reconstruction_loss_4k`, `reconstruction_loss_aux`, `base_loss`.
    """

    Params = CSRParams
    contract = None
    model_kinds = ("sparse",)

    def __init__(self, params: CSRParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        self.loss = build_loss(params.loss, model)

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> dict[str, Tensor]:
        outputs = [model(column) for column in features]
        missing = [key for key in RECONSTRUCTION_KEYS if key not in outputs[0]]
        if missing:
            raise TrainingError(f"CSRLoss needs a CSR model, whose sparse autoencoder outputs its reconstructions "
                                f"({', '.join(missing)} are missing); train SPLADE models with SpladeLoss")
        terms = reconstruction_terms(outputs, self.params.beta)
        embeddings = [output["sentence_embedding"] for output in outputs]
        terms["base_loss"] = self.loss.compute_loss_from_embeddings(embeddings, labels) * self.params.gamma
        return terms

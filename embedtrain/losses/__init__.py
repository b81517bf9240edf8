"""Losses: importing this package registers every loss in `LOSSES`."""

from embedtrain.losses import (  # noqa: F401
    adaptive_layer,
    angle,
    batch_all_triplet,
    batch_hard_soft_margin_triplet,
    batch_hard_triplet,
    batch_semi_hard_triplet,
    cached_gist_embed,
    cached_multiple_negatives_ranking,
    cached_multiple_negatives_symmetric_ranking,
    contrastive,
    contrastive_tension,
    contrastive_tension_in_batch,
    cosent,
    cosine_similarity,
    denoising_auto_encoder,
    distill_kl_div,
    embed_distill,
    gist_embed,
    global_orthogonal_regularization,
    margin_mse,
    matryoshka,
    matryoshka_2d,
    mega_batch_margin,
    mse,
    multiple_negatives_ranking,
    multiple_negatives_symmetric_ranking,
    online_contrastive,
    softmax,
    triplet,
)
from embedtrain.losses.registry import (
    LOSSES,
    EmbeddingLoss,
    LossParams,
    build_loss,
    loss_config_union,
    loss_contract,
    saved_similarity,
    total_loss,
)
from embedtrain.losses.sparse import (  # noqa: F401
    cached_splade,
    csr,
    sparse_angle,
    sparse_cosent,
    sparse_cosine_similarity,
    sparse_distill_kl_div,
    sparse_margin_mse,
    sparse_mse,
    sparse_multiple_negatives_ranking,
    sparse_triplet,
    splade,
)

# Modifiers take any registered loss as their `loss:`; that union exists only now that every loss is registered.
for _params in (matryoshka.MatryoshkaParams, adaptive_layer.AdaptiveLayerParams, matryoshka_2d.Matryoshka2dParams):
    _params.model_rebuild(_types_namespace={"LossConfig": loss_config_union()})

__all__ = ["LOSSES", "EmbeddingLoss", "LossParams", "build_loss", "loss_config_union", "loss_contract", "total_loss"]

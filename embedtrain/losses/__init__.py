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
    resolve_wrapped_losses,
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
from embedtrain.losses.sparse.inner_loss import sparse_loss_config_union

# Wrappers take registered losses as their `loss:`; those unions exist only now that every loss is registered.
resolve_wrapped_losses({"LossConfig": loss_config_union(), "SparseLossConfig": sparse_loss_config_union()})

__all__ = ["LOSSES", "EmbeddingLoss", "LossParams", "build_loss", "loss_config_union", "loss_contract", "saved_similarity",
           "total_loss"]

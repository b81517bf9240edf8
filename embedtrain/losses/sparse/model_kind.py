"""The recipe check that each loss suits the kind of model it trains: a sparse model trains under a sparse wrapper,
a cross-encoder with a cross-encoder loss."""

from embedtrain.losses.registry import LOSSES, LossParams, ModelKind

CROSS_ENCODER_PREFIX = "CrossEncoder"
"""A cross-encoder loss with a bi-encoder namesake is named after it with this prefix (see `losses.cross_encoder`)."""

SPARSE_WRAPPING = ("{{type: SpladeLoss, loss: {{type: {inner}}}, document_regularizer_weight: 3.0e-5, "
                   "query_regularizer_weight: 5.0e-5}} for SPLADE (query_regularizer_weight 0 for inference-free SPLADE; "
                   "CachedSpladeLoss for large batches), or {{type: CSRLoss, loss: {{type: {inner}}}}} for a CSR model")


def model_kind_problems(losses: dict[str, LossParams], model_kind: ModelKind) -> list[tuple[tuple[str, ...], str]]:
    """(key path, message) for every entry of a recipe's `losses:` that cannot train a `model_kind` model.

    A sparse model needs the terms that make its embeddings sparse (SpladeLoss, CachedSpladeLoss,
    CSRLoss; only SparseMSELoss distils without them), so a plain loss is refused, as the reference
    refuses it at its first step; a sparse loss on a dense model is refused too.
    """
    problems = []
    for name, params in losses.items():
        loss_class = LOSSES[params.type].loss_class
        if model_kind in loss_class.model_kinds:
            continue
        problems.append((("losses", name, "type"), _explain(params.type, loss_class.model_kinds, model_kind)))
    return problems


def _explain(loss: str, kinds: tuple[ModelKind, ...], model_kind: ModelKind) -> str:
    if "cross_encoder" in kinds:
        return _cross_encoder_loss_on(loss, model_kind)
    if model_kind == "cross_encoder":
        return _embedding_loss_on_a_cross_encoder(loss, kinds)
    if model_kind == "dense":
        dense_variant = loss.removeprefix("Sparse")
        instead = f"use {dense_variant}" if dense_variant != loss and dense_variant in LOSSES else "use a dense loss"
        return f"{loss} trains sparse models (model.kind: sparse), but this model is dense: {instead}"
    if not kinds:
        return (f"{loss} cannot train a sparse model on its own: a sparse model trains under a wrapper that adds the "
                f"terms keeping its embeddings sparse. Wrap it: {SPARSE_WRAPPING.format(inner=loss)}")
    sparse_variant = f"Sparse{loss}"
    inner = sparse_variant if sparse_variant in LOSSES else "SparseMultipleNegativesRankingLoss"
    return (f"{loss} trains dense models; a sparse model (model.kind: sparse) trains with a sparse loss inside a "
            f"wrapper: {SPARSE_WRAPPING.format(inner=inner)}")


def _cross_encoder_loss_on(loss: str, model_kind: ModelKind) -> str:
    """A cross-encoder loss on a dense or sparse model: the bi-encoder namesake when there is one."""
    namesake = loss.removeprefix(CROSS_ENCODER_PREFIX)
    if model_kind == "dense":
        instead = f"use {namesake}" if namesake != loss and namesake in LOSSES else "use a dense loss"
    else:
        inner = f"Sparse{namesake}" if f"Sparse{namesake}" in LOSSES else "SparseMultipleNegativesRankingLoss"
        instead = f"wrap a sparse loss: {SPARSE_WRAPPING.format(inner=inner)}"
    return (f"{loss} trains cross-encoders (model.kind: cross_encoder), which score text pairs, but this model is "
            f"{model_kind}: {instead}")


def _embedding_loss_on_a_cross_encoder(loss: str, kinds: tuple[ModelKind, ...]) -> str:
    """A dense or sparse loss on a cross-encoder: its cross-encoder namesake when there is one."""
    family = "dense" if "dense" in kinds else "sparse"
    namesake = f"{CROSS_ENCODER_PREFIX}{loss.removeprefix('Sparse')}"
    instead = (f"use {namesake}" if namesake in LOSSES else
               "use a cross-encoder loss (BinaryCrossEntropyLoss, CrossEncoderMultipleNegativesRankingLoss, "
               "LambdaLoss, ...; `embedtrain list losses` shows each loss's family)")
    return (f"{loss} trains {family} embedding models, but this model is a cross-encoder (model.kind: cross_encoder), "
            f"which scores text pairs: {instead}")

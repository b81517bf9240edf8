"""The rest of the dense loss catalogue equals sentence-transformers: loss value and gradients, on the tiny model.

Same method as test_loss_parity.py (both use tests/helpers/parity.py): both libraries load the same checkpoint and
embed the same batch. Losses with parameters of their own (a projection, a logit scale, a second
encoder) start from the reference's values, and their gradients are compared too. Losses that
draw random numbers (sampled Matryoshka dimensions or layers) are run with Python's RNG seeded
identically for both libraries.
"""

from pathlib import Path

import pytest
import torch
from helpers.asserts import assert_same_gradients
from helpers.parity import Case, build_both, run_both
from helpers.texts import (
    ANCHORS,
    CLASS_LABELS,
    MARGINS,
    PAIR,
    POSITIVES,
    QUADRUPLET,
    SCORE_LABELS,
    TEACHER_SCORES,
    TRIPLET,
)
from helpers.tiny_models import make_tiny_checkpoint
from sentence_transformers import SentenceTransformer, util
from sentence_transformers.sentence_transformer import losses as st_losses
from sentence_transformers.sentence_transformer.losses.batch_hard_triplet import BatchHardTripletLossDistanceFunction
from sentence_transformers.sentence_transformer.losses.contrastive import SiameseDistanceMetric
from sentence_transformers.sentence_transformer.losses.triplet import TripletDistanceMetric
from torch import nn

from embedtrain.losses import LOSSES, build_loss
from embedtrain.models.io import load_model

BINARY_LABELS = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
TEACHER_EMBEDDINGS = torch.randn(8, 32, generator=torch.Generator().manual_seed(3))
TEACHER_EMBEDDINGS_SMALL = torch.randn(8, 16, generator=torch.Generator().manual_seed(4))
TEACHER_EMBEDDINGS_PER_COLUMN = torch.randn(8, 2, 32, generator=torch.Generator().manual_seed(5))
SINGLE = [ANCHORS]


def mnrl(**options):
    return lambda model: st_losses.MultipleNegativesRankingLoss(model, **options)


MNRL = "MultipleNegativesRankingLoss"
CASES = {
    "mnrl-symmetric-directions": Case({"type": MNRL, "directions": ["query_to_doc", "doc_to_query"], "partition_mode": "per_direction"},
                                      mnrl(directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"), TRIPLET),
    "mnrl-gte-all-directions": Case(
        {"type": MNRL, "directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]},
        mnrl(directions=("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")), QUADRUPLET),
    "mnrl-hardness-in-batch": Case({"type": MNRL, "hardness_mode": "in_batch_negatives", "hardness_strength": 9.0},
                                   mnrl(hardness_mode="in_batch_negatives", hardness_strength=9.0), QUADRUPLET),
    "mnrl-hardness-hard": Case({"type": MNRL, "hardness_mode": "hard_negatives", "hardness_strength": 5.0},
                               mnrl(hardness_mode="hard_negatives", hardness_strength=5.0), QUADRUPLET),
    "mnrl-hardness-all": Case({"type": MNRL, "hardness_mode": "all_negatives", "hardness_strength": 5.0, "scale": 10.0},
                              mnrl(hardness_mode="all_negatives", hardness_strength=5.0, scale=10.0), TRIPLET),
    "mnsrl": Case({"type": "MultipleNegativesSymmetricRankingLoss"}, st_losses.MultipleNegativesSymmetricRankingLoss, TRIPLET),
    "cached-mnrl": Case({"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3},
                        lambda model: st_losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=3), QUADRUPLET),
    "cached-mnrl-tokens-gte": Case(
        {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_num_tokens": 20,
         "directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"], "hardness_mode": "all_negatives",
         "hardness_strength": 5.0},
        lambda model: st_losses.CachedMultipleNegativesRankingLoss(
            model, mini_batch_num_tokens=20, directions=("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"),
            hardness_mode="all_negatives", hardness_strength=5.0), TRIPLET),
    "cached-mnsrl": Case({"type": "CachedMultipleNegativesSymmetricRankingLoss", "mini_batch_size": 4},
                         lambda model: st_losses.CachedMultipleNegativesSymmetricRankingLoss(model, mini_batch_size=4), TRIPLET),
    "angle": Case({"type": "AnglELoss"}, st_losses.AnglELoss, PAIR, SCORE_LABELS),
    "contrastive": Case({"type": "ContrastiveLoss"}, st_losses.ContrastiveLoss, PAIR, BINARY_LABELS),
    "contrastive-euclidean-sum": Case(
        {"type": "ContrastiveLoss", "distance_metric": "euclidean", "margin": 2.0, "size_average": False},
        lambda model: st_losses.ContrastiveLoss(model, SiameseDistanceMetric.EUCLIDEAN, margin=2.0, size_average=False),
        PAIR, BINARY_LABELS),
    "online-contrastive": Case({"type": "OnlineContrastiveLoss", "margin": 1.0},
                               lambda model: st_losses.OnlineContrastiveLoss(model, margin=1.0), PAIR, BINARY_LABELS),
    "online-contrastive-manhattan": Case(
        {"type": "OnlineContrastiveLoss", "distance_metric": "manhattan", "margin": 8.0},
        lambda model: st_losses.OnlineContrastiveLoss(model, SiameseDistanceMetric.MANHATTAN, margin=8.0), PAIR, BINARY_LABELS),
    "triplet": Case({"type": "TripletLoss"}, st_losses.TripletLoss, TRIPLET),
    "triplet-cosine": Case({"type": "TripletLoss", "distance_metric": "cosine", "triplet_margin": 0.5},
                           lambda model: st_losses.TripletLoss(model, TripletDistanceMetric.COSINE, triplet_margin=0.5), TRIPLET),
    "batch-all-triplet": Case({"type": "BatchAllTripletLoss", "margin": 1.0},
                              lambda model: st_losses.BatchAllTripletLoss(model, margin=1.0), SINGLE, CLASS_LABELS),
    "batch-hard-triplet": Case({"type": "BatchHardTripletLoss"}, st_losses.BatchHardTripletLoss, SINGLE, CLASS_LABELS),
    "batch-hard-triplet-cosine": Case(
        {"type": "BatchHardTripletLoss", "distance_metric": "cosine", "margin": 0.5},
        lambda model: st_losses.BatchHardTripletLoss(model, BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.5),
        SINGLE, CLASS_LABELS),
    "batch-hard-soft-margin-triplet": Case({"type": "BatchHardSoftMarginTripletLoss"}, st_losses.BatchHardSoftMarginTripletLoss,
                                           SINGLE, CLASS_LABELS),
    "batch-semi-hard-triplet": Case({"type": "BatchSemiHardTripletLoss", "margin": 1.0},
                                    lambda model: st_losses.BatchSemiHardTripletLoss(model, margin=1.0), SINGLE, CLASS_LABELS),
    "mega-batch-margin": Case({"type": "MegaBatchMarginLoss", "mini_batch_size": 3},
                              lambda model: st_losses.MegaBatchMarginLoss(model, mini_batch_size=3), PAIR),
    "mega-batch-margin-full": Case({"type": "MegaBatchMarginLoss", "use_mini_batched_version": False},
                                   lambda model: st_losses.MegaBatchMarginLoss(model, use_mini_batched_version=False), PAIR),
    "margin-mse-margins": Case({"type": "MarginMSELoss"}, st_losses.MarginMSELoss, QUADRUPLET, MARGINS),
    "margin-mse-raw-scores": Case({"type": "MarginMSELoss", "similarity": "cosine"},
                                  lambda model: st_losses.MarginMSELoss(model, similarity_fct=util.pairwise_cos_sim),
                                  QUADRUPLET, TEACHER_SCORES),
    "margin-mse-one-negative": Case({"type": "MarginMSELoss"}, st_losses.MarginMSELoss, TRIPLET, MARGINS[:, 0]),
    "distill-kl-div": Case({"type": "DistillKLDivLoss"}, st_losses.DistillKLDivLoss, QUADRUPLET, TEACHER_SCORES),
    "distill-kl-div-temperatures": Case(
        {"type": "DistillKLDivLoss", "similarity": "cosine", "student_temperature": 0.05, "teacher_temperature": 2.0},
        lambda model: st_losses.DistillKLDivLoss(model, similarity_fct=util.pairwise_cos_sim, student_temperature=0.05,
                                                 teacher_temperature=2.0), QUADRUPLET, TEACHER_SCORES),
    "embed-distill": Case({"type": "EmbedDistillLoss"}, st_losses.EmbedDistillLoss, PAIR, TEACHER_EMBEDDINGS),
    "embed-distill-l2-per-column": Case({"type": "EmbedDistillLoss", "distance_metric": "l2"},
                                        lambda model: st_losses.EmbedDistillLoss(model, distance_metric="l2"),
                                        PAIR, TEACHER_EMBEDDINGS_PER_COLUMN),
    "embed-distill-projection": Case({"type": "EmbedDistillLoss", "projection_dim": 16},
                                     lambda model: st_losses.EmbedDistillLoss(model, projection_dim=16),
                                     SINGLE, TEACHER_EMBEDDINGS_SMALL, [("projection", "projection")]),
    "mse": Case({"type": "MSELoss"}, st_losses.MSELoss, PAIR, TEACHER_EMBEDDINGS),
    "gor": Case({"type": "GlobalOrthogonalRegularizationLoss"}, st_losses.GlobalOrthogonalRegularizationLoss, PAIR),
    "gor-sum-second-moment-only": Case(
        {"type": "GlobalOrthogonalRegularizationLoss", "mean_weight": 0, "aggregation": "sum"},
        lambda model: st_losses.GlobalOrthogonalRegularizationLoss(model, mean_weight=0, aggregation="sum"), TRIPLET),
    "contrastive-tension-in-batch": Case(
        {"type": "ContrastiveTensionLossInBatchNegatives"}, st_losses.ContrastiveTensionLossInBatchNegatives, SINGLE,
        own_parameters=[("logit_scale", "logit_scale")]),
    "contrastive-tension": Case({"type": "ContrastiveTensionLoss"}, st_losses.ContrastiveTensionLoss,
                                [ANCHORS, ANCHORS[:3] + POSITIVES[3:6] + ANCHORS[6:]]),
    "matryoshka-cosent": Case(
        {"type": "MatryoshkaLoss", "loss": {"type": "CoSENTLoss"}, "matryoshka_dims": [32, 16, 8], "matryoshka_weights": [1, 2, 0.5]},
        lambda model: st_losses.MatryoshkaLoss(model, st_losses.CoSENTLoss(model), [32, 16, 8], [1, 2, 0.5]),
        PAIR, SCORE_LABELS),
    "matryoshka-mnrl-sampled": Case(
        {"type": "MatryoshkaLoss", "loss": {"type": MNRL}, "matryoshka_dims": [8, 32, 16, 4], "n_dims_per_step": 2},
        lambda model: st_losses.MatryoshkaLoss(model, st_losses.MultipleNegativesRankingLoss(model), [8, 32, 16, 4],
                                               n_dims_per_step=2), TRIPLET),
    "matryoshka-mse-truncates-teacher": Case(
        {"type": "MatryoshkaLoss", "loss": {"type": "MSELoss"}, "matryoshka_dims": [32, 8]},
        lambda model: st_losses.MatryoshkaLoss(model, st_losses.MSELoss(model), [32, 8]), PAIR, TEACHER_EMBEDDINGS),
    "matryoshka-cached-mnrl": Case(
        {"type": "MatryoshkaLoss", "loss": {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3},
         "matryoshka_dims": [32, 16, 8]},
        lambda model: st_losses.MatryoshkaLoss(model, st_losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=3),
                                               [32, 16, 8]), TRIPLET),
    "adaptive-layer-mnrl": Case(
        {"type": "AdaptiveLayerLoss", "loss": {"type": MNRL}},
        lambda model: st_losses.AdaptiveLayerLoss(model, st_losses.MultipleNegativesRankingLoss(model)), TRIPLET),
    "adaptive-layer-all-layers-log": Case(
        {"type": "AdaptiveLayerLoss", "loss": {"type": "CoSENTLoss"}, "n_layers_per_step": -1, "layer_weighting": "log",
         "kl_temperature": 0.5, "last_layer_weight": 2.0},
        lambda model: st_losses.AdaptiveLayerLoss(model, st_losses.CoSENTLoss(model), n_layers_per_step=-1,
                                                  layer_weighting="log", kl_temperature=0.5, last_layer_weight=2.0),
        PAIR, SCORE_LABELS),
    "matryoshka-2d": Case(
        {"type": "Matryoshka2dLoss", "loss": {"type": MNRL}, "matryoshka_dims": [32, 16, 8]},
        lambda model: st_losses.Matryoshka2dLoss(model, st_losses.MultipleNegativesRankingLoss(model), [32, 16, 8]),
        TRIPLET),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_loss_and_gradients_match_the_reference(case: Case, tiny_checkpoint: Path) -> None:
    st_model, st_loss, model, loss = build_both(case, tiny_checkpoint)
    value, expected = run_both(case, st_model, st_loss, model, loss)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert_same_gradients(model[0].auto_model, st_model[0].auto_model)
    if hasattr(loss, "second_encoder"):  # Contrastive Tension's copy of the model, trained too
        assert_same_gradients(loss.second_encoder[0].auto_model, st_loss.model1[0].auto_model)
    for ours, theirs in case.own_parameters:
        target, source = getattr(loss, ours), getattr(st_loss, theirs)
        if isinstance(target, nn.Module):
            assert_same_gradients(target, source)
        else:
            torch.testing.assert_close(target.grad, source.grad, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="session")
def guide_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Guide models: another tiny BERT with the same vocabulary, and the same saved with a shorter length limit
    (which makes both libraries re-tokenize the texts for the guide)."""
    plain = make_tiny_checkpoint(tmp_path_factory.mktemp("guide"), seed=1)
    short = tmp_path_factory.mktemp("guide-short")
    st_guide = SentenceTransformer(str(plain), device="cpu")
    st_guide.max_seq_length = 8
    st_guide.save(str(short))
    return {"same-tokenizer": plain, "retokenized": short}


GIST_CASES = {
    "gist": ({}, {}, TRIPLET),
    "gist-pairs-relative-margin": ({"margin_strategy": "relative", "margin": 0.05}, {"margin_strategy": "relative", "margin": 0.05}, PAIR),
    "gist-two-negatives-no-contrast": ({"contrast_anchors": False, "contrast_positives": False, "temperature": 0.05},
                                       {"contrast_anchors": False, "contrast_positives": False, "temperature": 0.05}, QUADRUPLET),
}


@pytest.mark.parametrize("guide_kind", ["same-tokenizer", "retokenized"])
@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
@pytest.mark.parametrize("name", GIST_CASES)
def test_gist_losses_match_the_reference(name: str, cached: bool, guide_kind: str, tiny_checkpoint: Path,
                                         guide_checkpoints: dict[str, Path]) -> None:
    ours, theirs, columns = GIST_CASES[name]
    guide_path = guide_checkpoints[guide_kind]

    def st_guide() -> SentenceTransformer:
        return SentenceTransformer(str(guide_path), device="cpu")

    if cached:
        params = {"type": "CachedGISTEmbedLoss", "guide": str(guide_path), "mini_batch_size": 3, **ours}
        reference = lambda model: st_losses.CachedGISTEmbedLoss(model, st_guide(), mini_batch_size=3, **theirs)  # noqa: E731
    elif len(columns) > 3:  # the reference's uncached loss takes one negative column at most; its cached one, in one mini-batch, is the same loss
        params = {"type": "GISTEmbedLoss", "guide": str(guide_path), **ours}
        reference = lambda model: st_losses.CachedGISTEmbedLoss(  # noqa: E731
            model, st_guide(), mini_batch_size=len(ANCHORS), **theirs)
    else:
        params = {"type": "GISTEmbedLoss", "guide": str(guide_path), **ours}
        reference = lambda model: st_losses.GISTEmbedLoss(model, st_guide(), **theirs)  # noqa: E731
    case = Case(params, reference, columns)
    st_model, st_loss, model, loss = build_both(case, tiny_checkpoint)
    assert loss.guide.must_retokenize == (guide_kind == "retokenized")
    value, expected = run_both(case, st_model, st_loss, model, loss)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert_same_gradients(model[0].auto_model, st_model[0].auto_model)


def test_denoising_auto_encoder_matches_the_reference(tiny_checkpoint: Path) -> None:
    """The decoder's cross-attention starts random: both libraries build it from the same seed."""
    st_model = SentenceTransformer(str(tiny_checkpoint), device="cpu").train()
    torch.manual_seed(0)
    st_loss = st_losses.DenoisingAutoEncoderLoss(st_model)
    model = load_model(tiny_checkpoint).train()
    torch.manual_seed(0)
    loss = build_loss(LOSSES["DenoisingAutoEncoderLoss"].params_model(type="DenoisingAutoEncoderLoss"), model)
    st_decoder, decoder = st_loss.decoder.state_dict(), loss.decoder.state_dict()
    assert all(torch.equal(decoder[name], tensor) for name, tensor in st_decoder.items())
    # Tied: the encoder's embedding matrix is the decoder's.
    assert model[0].auto_model.embeddings.word_embeddings.weight is loss.decoder.base_model.embeddings.word_embeddings.weight

    damaged = ["man playing guitar", "woman eats", "dog park ball", "people bus", "child", "sunny today", "horse beach", "weather"]
    case = Case({}, None, [damaged, ANCHORS])
    value, expected = run_both(case, st_model, st_loss, model, loss)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert_same_gradients(loss.decoder, st_loss.decoder)

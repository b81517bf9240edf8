"""embedtrain's sparse losses compute what sentence-transformers computes: every loss term and the gradients.

The tiny sparse models (SPLADE, inference-free SPLADE with a Router, CSR) are built with
sentence-transformers (`tests/helpers/sparse_models.py`), and the same model object, batch and labels go to both
libraries' losses, so what is compared is the loss maths: each named term to 1e-5 relative, and the
gradient of every model parameter (`assert_same_gradient_values`). Regulariser weights are set high
enough that the regularisers weigh as much as the wrapped loss, so an error in either shows.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers.asserts import assert_same_gradient_values
from helpers.sparse_models import csr_model, inference_free_model, make_tiny_mlm_checkpoint, splade_model
from helpers.sparse_parity import (
    DOCUMENT_WEIGHT,
    MNRL,
    QUERY_WEIGHT,
    SparseCase,
    assert_same_terms,
    preprocess,
    run_loss,
)
from helpers.texts import MARGINS, PAIR, QUADRUPLET, SCORE_LABELS, TEACHER_SCORES, TRIPLET
from sentence_transformers.sparse_encoder import SparseEncoder
from sentence_transformers.sparse_encoder import losses as st_losses
from sentence_transformers.util import pairwise_cos_sim
from torch import nn

from embedtrain.losses import LOSSES, build_loss

QUERY_THRESHOLD, DOCUMENT_THRESHOLD = 188, 186
"""L0 thresholds that spare some rows of the tiny SPLADE model's embeddings and not others (checked below)."""
SPARSE_TEACHER = torch.relu(torch.randn(8, 198, generator=torch.Generator().manual_seed(6)) - 1.0)
"""Teacher sparse embeddings over the tiny vocabulary (198 tokens)."""


def splade(inner: dict, reference_inner: Callable[[SparseEncoder], nn.Module], *, cached: dict | None = None, **options):
    """(our SpladeLoss / CachedSpladeLoss entry, a builder of the reference's) for the same inner loss and options."""
    ours = {"type": "CachedSpladeLoss" if cached is not None else "SpladeLoss", "loss": inner, **options, **(cached or {})}

    def reference(model: SparseEncoder) -> nn.Module:
        wrapper = st_losses.CachedSpladeLoss if cached is not None else st_losses.SpladeLoss
        return wrapper(model, reference_inner(model), **options, **(cached or {}))

    return ours, reference


WEIGHTS = {"document_regularizer_weight": DOCUMENT_WEIGHT, "query_regularizer_weight": QUERY_WEIGHT}
CASES = {
    "splade-mnrl": SparseCase(*splade(MNRL, st_losses.SparseMultipleNegativesRankingLoss, **WEIGHTS), TRIPLET),
    "splade-mnrl-thresholds": SparseCase(*splade(MNRL, st_losses.SparseMultipleNegativesRankingLoss, **WEIGHTS,
                                           query_regularizer_threshold=QUERY_THRESHOLD,
                                           document_regularizer_threshold=DOCUMENT_THRESHOLD), QUADRUPLET),
    "splade-mnrl-options": SparseCase(*splade(
        MNRL | {"directions": ["query_to_doc", "doc_to_query"], "hardness_mode": "in_batch_negatives",
                "hardness_strength": 2.0, "scale": 2.0},
        lambda model: st_losses.SparseMultipleNegativesRankingLoss(
            model, directions=("query_to_doc", "doc_to_query"), hardness_mode="in_batch_negatives",
            hardness_strength=2.0, scale=2.0), **WEIGHTS), TRIPLET),
    "splade-document-only-cosent": SparseCase(*splade({"type": "SparseCoSENTLoss"}, st_losses.SparseCoSENTLoss,
                                                document_regularizer_weight=DOCUMENT_WEIGHT,
                                                use_document_regularizer_only=True), PAIR, SCORE_LABELS),
    "splade-margin-mse": SparseCase(*splade({"type": "SparseMarginMSELoss"}, st_losses.SparseMarginMSELoss, **WEIGHTS),
                              QUADRUPLET, MARGINS),
    "splade-distill-kl-div": SparseCase(*splade({"type": "SparseDistillKLDivLoss"}, st_losses.SparseDistillKLDivLoss, **WEIGHTS),
                                  QUADRUPLET, TEACHER_SCORES),
    "splade-distill-kl-div-cosine": SparseCase(*splade(
        {"type": "SparseDistillKLDivLoss", "similarity": "cosine", "teacher_temperature": 1.0},
        lambda model: st_losses.SparseDistillKLDivLoss(model, similarity_fct=pairwise_cos_sim, teacher_temperature=1.0),
        **WEIGHTS), QUADRUPLET, TEACHER_SCORES),
    "splade-angle": SparseCase(*splade({"type": "SparseAnglELoss"}, st_losses.SparseAnglELoss, **WEIGHTS), PAIR, SCORE_LABELS),
    "splade-cosine-similarity": SparseCase(*splade({"type": "SparseCosineSimilarityLoss"}, st_losses.SparseCosineSimilarityLoss,
                                             **WEIGHTS), PAIR, SCORE_LABELS),
    "splade-triplet": SparseCase(*splade({"type": "SparseTripletLoss", "triplet_margin": 1.0},
                                   lambda model: st_losses.SparseTripletLoss(model, triplet_margin=1.0), **WEIGHTS), TRIPLET),
    # The reference's SpladeLoss hands the labels unchanged to SparseMSELoss.compute_loss_from_embeddings, which (since
    # v6) takes one teacher tensor per column, so a (batch, vocab) label would be read as rows; it gets the per-column
    # list that its own forward would build from that label.
    "splade-mse": SparseCase(*splade({"type": "SparseMSELoss"}, st_losses.SparseMSELoss, **WEIGHTS), PAIR, SPARSE_TEACHER,
                       reference_labels=[SPARSE_TEACHER, SPARSE_TEACHER]),
    "sparse-mse-alone": SparseCase({"type": "SparseMSELoss"}, st_losses.SparseMSELoss, PAIR, SPARSE_TEACHER),
    "cached-splade": SparseCase(*splade(MNRL, st_losses.SparseMultipleNegativesRankingLoss, cached={"mini_batch_size": 3},
                                  **WEIGHTS), QUADRUPLET),
    "cached-splade-tokens-thresholds": SparseCase(*splade(
        {"type": "SparseMarginMSELoss"}, st_losses.SparseMarginMSELoss, cached={"mini_batch_num_tokens": 20}, **WEIGHTS,
        query_regularizer_threshold=QUERY_THRESHOLD, document_regularizer_threshold=DOCUMENT_THRESHOLD),
        QUADRUPLET, MARGINS),
    "inference-free-query-regularizer-off": SparseCase(*splade(MNRL, st_losses.SparseMultipleNegativesRankingLoss,
                                                         document_regularizer_weight=DOCUMENT_WEIGHT),
                                                 TRIPLET, model="inference-free"),
    "inference-free-query-regularizer-on": SparseCase(*splade(MNRL, st_losses.SparseMultipleNegativesRankingLoss, **WEIGHTS),
                                                TRIPLET, model="inference-free"),
    "inference-free-cached": SparseCase(*splade(MNRL, st_losses.SparseMultipleNegativesRankingLoss, cached={"mini_batch_size": 3},
                                          **WEIGHTS), QUADRUPLET, model="inference-free"),
    "csr": SparseCase({"type": "CSRLoss"}, st_losses.CSRLoss, TRIPLET, model="csr"),
    "csr-cosent-weights": SparseCase({"type": "CSRLoss", "loss": {"type": "SparseCoSENTLoss"}, "beta": 0.5, "gamma": 0.1},
                               lambda model: st_losses.CSRLoss(model, st_losses.SparseCoSENTLoss(model), beta=0.5, gamma=0.1),
                               PAIR, SCORE_LABELS, model="csr"),
}


@pytest.fixture(scope="session")
def mlm_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_mlm_checkpoint(tmp_path_factory.mktemp("tiny-mlm"))


@pytest.fixture
def build_sparse_model(mlm_checkpoint: Path, tiny_checkpoint: Path) -> Callable[[str], SparseEncoder]:
    builders = {"splade": lambda: splade_model(mlm_checkpoint), "inference-free": lambda: inference_free_model(mlm_checkpoint),
                "csr": lambda: csr_model(tiny_checkpoint)}
    return lambda kind: builders[kind]()


def ours(params: dict, model: SparseEncoder) -> Callable:
    loss = build_loss(LOSSES[params["type"]].params_model(**params), model)
    return lambda features, labels: loss(model, features, labels)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_loss_terms_and_gradients_match_the_reference(case: SparseCase, build_sparse_model) -> None:
    model = build_sparse_model(case.model)
    expected_terms, expected_grads = run_loss(case.reference(model), model, case, case.reference_labels)
    terms, grads = run_loss(ours(case.params, model), model, case)
    assert_same_terms(terms, expected_terms)
    assert_same_gradient_values(grads, expected_grads)
    nonzero = {name for name, value in terms.items() if value != 0}
    assert nonzero == set(terms), f"terms that are zero test nothing: {set(terms) - nonzero}"


@pytest.mark.parametrize("kind", ["splade", "inference-free"])
def test_cached_splade_gives_splade_loss_gradients(kind: str, build_sparse_model) -> None:
    case = CASES["splade-mnrl-thresholds"]
    model = build_sparse_model(kind)
    case = SparseCase(case.params, case.reference, case.columns, model=kind)
    expected_terms, expected_grads = run_loss(ours(case.params, model), model, case)
    terms, grads = run_loss(ours(case.params | {"type": "CachedSpladeLoss", "mini_batch_size": 2}, model), model, case)
    assert_same_terms(terms, expected_terms)
    assert_same_gradient_values(grads, expected_grads)


def test_thresholds_spare_some_rows_and_not_others(mlm_checkpoint: Path) -> None:
    """The thresholds of the cases above decide for some rows and against others: both branches are compared."""
    model = splade_model(mlm_checkpoint)
    with torch.no_grad():
        active = [(model(model.preprocess(texts))["sentence_embedding"] != 0).sum(dim=1) for texts in QUADRUPLET]
    queries, documents = active[0], torch.cat(active[1:])
    assert 0 < int((queries > QUERY_THRESHOLD).sum()) < len(queries)
    assert 0 < int((documents > DOCUMENT_THRESHOLD).sum()) < len(documents)


def test_cached_splade_without_gradients_gives_splade_loss_terms(build_sparse_model) -> None:
    """Evaluation (no gradients) takes GradCache's other path: the same terms."""
    case = CASES["splade-mnrl"]
    model = build_sparse_model("splade")
    with torch.no_grad():
        expected = ours(case.params, model)(preprocess(model, case.columns, inference_free=False), None)
        cached = ours(case.params | {"type": "CachedSpladeLoss", "mini_batch_size": 3}, model)
        terms = cached(preprocess(model, case.columns, inference_free=False), None)
    assert_same_terms(terms, expected)

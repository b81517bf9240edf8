"""Sparse losses in recipes: which loss may train which kind of model, their options' validation, and the catalogue."""

from pathlib import Path

import pytest
from helpers.recipes import MINIMAL, recipe_error, write
from helpers.sparse_models import make_tiny_mlm_checkpoint, splade_model
from helpers.texts import TRIPLET
from pydantic import ValidationError

from embedtrain.commands.list_losses import loss_catalogue
from embedtrain.errors import TrainingError
from embedtrain.losses import LOSSES, build_loss
from embedtrain.losses.sparse.model_kind import model_kind_problems

SPARSE_LOSSES = {"SpladeLoss", "CachedSpladeLoss", "CSRLoss", "SparseMultipleNegativesRankingLoss", "SparseMarginMSELoss",
                 "SparseDistillKLDivLoss", "SparseMSELoss", "SparseCoSENTLoss", "SparseAnglELoss",
                 "SparseCosineSimilarityLoss", "SparseTripletLoss"}


def params(entry: dict):
    return LOSSES[entry["type"]].params_model(**entry)


SPLADE_ENTRY = {"type": "SpladeLoss", "loss": {"type": "SparseMultipleNegativesRankingLoss"},
                "document_regularizer_weight": 3e-5, "query_regularizer_weight": 5e-5}


@pytest.mark.parametrize("entry", [SPLADE_ENTRY, SPLADE_ENTRY | {"type": "CachedSpladeLoss"}, {"type": "CSRLoss"},
                                   {"type": "SparseMSELoss"}], ids=lambda entry: entry["type"])
def test_a_sparse_model_trains_with_a_wrapper_or_sparse_mse(entry: dict) -> None:
    assert model_kind_problems({"main": params(entry)}, "sparse") == []


def test_a_sparse_loss_alone_on_a_sparse_model_is_explained() -> None:
    [(where, message)] = model_kind_problems({"main": params({"type": "SparseCoSENTLoss"})}, "sparse")
    assert where == ("losses", "main", "type")
    assert message.startswith("SparseCoSENTLoss cannot train a sparse model on its own")
    assert "{type: SpladeLoss, loss: {type: SparseCoSENTLoss}, document_regularizer_weight: 3.0e-5" in message
    assert "{type: CSRLoss, loss: {type: SparseCoSENTLoss}}" in message


@pytest.mark.parametrize(("dense", "suggested"), [("CoSENTLoss", "SparseCoSENTLoss"),
                                                  ("GISTEmbedLoss", "SparseMultipleNegativesRankingLoss")])
def test_a_dense_loss_on_a_sparse_model_is_explained(dense: str, suggested: str) -> None:
    entry = {"type": dense} | ({"guide": "tiny-bert"} if dense == "GISTEmbedLoss" else {})
    [(_, message)] = model_kind_problems({"main": params(entry)}, "sparse")
    assert message.startswith(f"{dense} trains dense models; a sparse model (model.kind: sparse) trains with")
    assert f"{{type: SpladeLoss, loss: {{type: {suggested}}}" in message


def test_a_sparse_loss_on_a_dense_model_is_a_recipe_error(tmp_path: Path) -> None:
    """Until model.kind exists every recipe model is dense; each sparse entry is reported at its own line."""
    text = MINIMAL.replace("    type: CoSENTLoss\n", "    type: SparseCoSENTLoss\n")
    error = recipe_error(write(tmp_path, text))
    assert ":5: losses.cosent.type: SparseCoSENTLoss trains sparse models (model.kind: sparse), but this model is " \
           "dense: use CoSENTLoss" in error


def test_every_sparse_loss_is_refused_on_a_dense_model() -> None:
    entries = {"splade": SPLADE_ENTRY, "csr": {"type": "CSRLoss"}, "mse": {"type": "SparseMSELoss"},
               "plain": {"type": "MultipleNegativesRankingLoss"}}
    problems = model_kind_problems({name: params(entry) for name, entry in entries.items()}, "dense")
    assert [where[1] for where, _ in problems] == ["splade", "csr", "mse"]
    assert problems[0][1].endswith("but this model is dense: use a dense loss")


INVALID_OPTIONS = {
    "query weight with documents only": (SPLADE_ENTRY | {"use_document_regularizer_only": True},
                                         "query_regularizer_weight have no effect with use_document_regularizer_only"),
    "query threshold without query weight": (
        {k: v for k, v in SPLADE_ENTRY.items() if k != "query_regularizer_weight"} | {"query_regularizer_threshold": 10},
        "query_regularizer_threshold has no effect without query_regularizer_weight"),
    "dense inner loss": (SPLADE_ENTRY | {"loss": {"type": "MultipleNegativesRankingLoss"}},
                         "does not match any of the expected tags: 'SparseMultipleNegativesRankingLoss'"),
    "wrapper inside a wrapper": ({"type": "CSRLoss", "loss": SPLADE_ENTRY}, "does not match any of the expected tags"),
    "no warm-up": (SPLADE_ENTRY | {"regularizer_warmup_ratio": 0}, "greater than 0"),
    "missing document weight": ({"type": "SpladeLoss", "loss": {"type": "SparseTripletLoss"}}, "document_regularizer_weight"),
}


@pytest.mark.parametrize(("entry", "message"), INVALID_OPTIONS.values(), ids=INVALID_OPTIONS.keys())
def test_invalid_wrapper_options_are_refused(entry: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        params(entry)


def test_sparse_defaults_are_the_references() -> None:
    csr = params({"type": "CSRLoss"})
    assert (csr.beta, csr.gamma, csr.loss.type, csr.loss.scale, csr.loss.similarity) == (
        0.1, 1.0, "SparseMultipleNegativesRankingLoss", 1.0, "dot")
    assert params({"type": "SparseDistillKLDivLoss"}).temperature == 2.0
    splade = params(SPLADE_ENTRY)
    assert (splade.regularizer_warmup_ratio, splade.regularizer_warmup_schedule) == (1 / 3, "quadratic")


def test_csr_loss_on_a_splade_model_is_explained(tmp_path: Path) -> None:
    model = splade_model(make_tiny_mlm_checkpoint(tmp_path / "mlm"))
    loss = build_loss(params({"type": "CSRLoss"}), model)
    with pytest.raises(TrainingError, match="CSRLoss needs a CSR model"):
        loss(model, [model.preprocess(texts) for texts in TRIPLET], None)


def test_the_catalogue_lists_every_sparse_loss() -> None:
    catalogue = {entry["name"]: entry for entry in loss_catalogue()}
    assert SPARSE_LOSSES <= set(catalogue)
    assert catalogue["CSRLoss"]["parameters"]["loss"]["default"] == {"type": "SparseMultipleNegativesRankingLoss"}
    assert catalogue["SpladeLoss"]["parameters"]["document_regularizer_weight"]["default"] == "required"
    assert catalogue["CachedSpladeLoss"]["inputs"].startswith("those of the wrapped")
    assert catalogue["SparseMultipleNegativesRankingLoss"]["inputs"] == ["anchor", "positive", "negative..."]
    assert catalogue["SparseDistillKLDivLoss"]["label"] == "scores"

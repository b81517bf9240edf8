"""The registry reads each loss's declarations from its class: parameters, contract, properties, wrapped losses."""

from pathlib import Path
from typing import Literal

import pytest
from helpers.sparse_models import make_tiny_mlm_checkpoint, splade_model
from sentence_transformers.sparse_encoder import losses as st_losses

from embedtrain.data.contract import ColumnContract
from embedtrain.losses import LOSSES, EmbeddingLoss, LossParams, saved_similarity
from embedtrain.losses.registry import register_loss


def params(entry: dict) -> LossParams:
    return LOSSES[entry["type"]].params_model(**entry)


SPARSE_WRAPPERS = [{"type": "SpladeLoss", "document_regularizer_weight": 3e-5},
                   {"type": "CachedSpladeLoss", "document_regularizer_weight": 3e-5}, {"type": "CSRLoss"}]
SPARSE_INNER = [name for name, spec in LOSSES.items() if spec.loss_class.sparse_inner_loss]


def test_every_sparse_loss_is_an_inner_loss() -> None:
    assert sorted(SPARSE_INNER) == sorted(name for name in LOSSES
                                          if name.startswith("Sparse") and LOSSES[name].contract is not None)


@pytest.mark.parametrize("wrapper", SPARSE_WRAPPERS, ids=[wrapper["type"] for wrapper in SPARSE_WRAPPERS])
@pytest.mark.parametrize("inner", SPARSE_INNER)
def test_saved_similarity_looks_through_sparse_wrappers(wrapper: dict, inner: str) -> None:
    expected = "cosine" if inner in ("SparseCoSENTLoss", "SparseAnglELoss", "SparseCosineSimilarityLoss") else None
    assert saved_similarity(params({"type": inner})) == expected
    assert saved_similarity(params({**wrapper, "loss": {"type": inner}})) == expected


def test_saved_similarity_of_dense_losses_is_the_models_own() -> None:
    assert saved_similarity(params({"type": "CoSENTLoss"})) is None
    assert saved_similarity(params({"type": "Matryoshka2dLoss", "loss": {"type": "CosineSimilarityLoss"},
                                    "matryoshka_dims": [16]})) is None


def test_saved_similarity_is_what_the_reference_losses_set_on_their_model(tmp_path: Path) -> None:
    model = splade_model(make_tiny_mlm_checkpoint(tmp_path))
    for inner in SPARSE_INNER:
        model.similarity_fn_name = "dot"
        getattr(st_losses, inner)(model)
        expected = saved_similarity(params({"type": inner})) or "dot"
        assert model.similarity_fn_name == expected, inner


def test_a_wrapper_reads_the_contract_and_truncation_of_its_loss() -> None:
    softmax = {"type": "SoftmaxLoss", "num_labels": 3}
    assert LOSSES["MatryoshkaLoss"].contract is None
    with pytest.raises(ValueError, match="SoftmaxLoss cannot be trained on truncated embeddings: its classifier"):
        params({"type": "MatryoshkaLoss", "loss": softmax, "matryoshka_dims": [8]})
    with pytest.raises(ValueError, match="its projection expects full-size embeddings"):
        params({"type": "MatryoshkaLoss", "loss": {"type": "MSELoss", "projection_dim": 8}, "matryoshka_dims": [8]})


def test_register_loss_checks_the_declarations() -> None:
    class WrongParams(LossParams):
        type: Literal["SomethingElse"]

    class Undeclared(EmbeddingLoss):
        Params = WrongParams
        contract = ColumnContract(inputs=("sentence",))

    with pytest.raises(TypeError, match=r"Undeclared.Params must be .* Literal\['Undeclared'\]"):
        register_loss(Undeclared)

    class NoContractParams(LossParams):
        type: Literal["NoContract"]

    class NoContract(EmbeddingLoss):
        Params = NoContractParams

    with pytest.raises(TypeError, match="NoContract must declare its contract"):
        register_loss(NoContract)
    assert "Undeclared" not in LOSSES and "NoContract" not in LOSSES

"""The cross-encoder losses as a recipe meets them: options and their limits, the model outputs each needs, the
family checks against the model kind, and batch problems that reach a loss despite the data checks."""

import pytest
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from embedtrain.errors import DataError, RecipeError
from embedtrain.losses import LOSSES, build_loss
from embedtrain.losses.sparse.model_kind import model_kind_problems

CROSS_ENCODER_LOSSES = sorted(name for name, spec in LOSSES.items() if spec.family == "cross-encoder")


def params(entry: dict):
    return LOSSES[entry["type"]].params_model(**entry)


class LengthScorer(nn.Module):
    """A stand-in cross-encoder: each pair's logits are a linear map of its two texts' lengths."""

    def __init__(self, num_labels: int = 1) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.head = nn.Linear(2, num_labels)

    def score_pairs(self, pairs) -> Tensor:
        return self.head(torch.tensor([[len(first), len(second)] for first, second in pairs], dtype=torch.float32))


def test_the_family_is_twelve_losses_that_train_cross_encoders_only():
    assert len(CROSS_ENCODER_LOSSES) == 12
    for name in CROSS_ENCODER_LOSSES:
        assert LOSSES[name].loss_class.model_kinds == ("cross_encoder",), name
        assert LOSSES[name].contract.scored_as_pairs, name


@pytest.mark.parametrize("name", [name for name in CROSS_ENCODER_LOSSES if name != "CrossEntropyLoss"])
def test_a_score_loss_refuses_a_model_with_several_outputs(name):
    with pytest.raises(RecipeError, match=f"{name} trains a cross-encoder with one output .* but the model has 3 "
                                          f"labels; set model.cross_encoder.num_labels: 1, or use CrossEntropyLoss for "
                                          f"3 classes"):
        build_loss(params({"type": name}), LengthScorer(num_labels=3))
    build_loss(params({"type": name}), LengthScorer(num_labels=1))


def test_cross_entropy_refuses_a_model_with_one_output():
    with pytest.raises(RecipeError, match="CrossEntropyLoss classifies pairs into the model's labels, but the model "
                                          "has 1; set model.cross_encoder.num_labels to the number of classes"):
        build_loss(params({"type": "CrossEntropyLoss"}), LengthScorer(num_labels=1))


@pytest.mark.parametrize(("entry", "message"), [
    ({"type": "LambdaLoss", "weighting_scheme": "LambdaRankScheme", "mu": 5.0},
     "mu weighs NDCGLoss2PPScheme's terms; weighting_scheme LambdaRankScheme has none"),
    ({"type": "LambdaLoss", "weighting_scheme": "NDCGLoss3Scheme"}, "weighting_scheme"),
    ({"type": "LambdaLoss", "reduction_log": "ten"}, "reduction_log"),
    ({"type": "LambdaLoss", "k": 0}, "greater than 0"),
    ({"type": "RankNetLoss", "weighting_scheme": "NDCGLoss1Scheme"}, "weighting_scheme"),  # fixed: none
    ({"type": "ListMLELoss", "lambda_weight": "PListMLELambdaWeight"}, "lambda_weight"),  # fixed: none
    ({"type": "BinaryCrossEntropyLoss", "activation_fn": "torch.nn.Sigmoid"}, "'identity', 'sigmoid' or 'tanh'"),
    ({"type": "BinaryCrossEntropyLoss", "pos_weight": 0}, "greater than 0"),
    ({"type": "CrossEncoderMultipleNegativesRankingLoss", "num_negatives": 0}, "greater than 0"),
    ({"type": "CrossEncoderCachedMultipleNegativesRankingLoss", "mini_batch_size": 0}, "greater than 0"),
    ({"type": "ListNetLoss", "mini_batch_size": -1}, "greater than or equal to 0"),
])
def test_invalid_options_are_refused(entry, message):
    with pytest.raises(ValidationError, match=message):
        params(entry)


def test_defaults_are_the_references():
    assert params({"type": "LambdaLoss"}).model_dump() == {
        "type": "LambdaLoss", "activation_fn": "identity", "mini_batch_size": None, "k": None, "sigma": 1.0,
        "eps": 1e-10, "reduction_log": "binary", "weighting_scheme": "NDCGLoss2PPScheme", "mu": 10.0}
    assert params({"type": "CrossEncoderMultipleNegativesRankingLoss"}).model_dump() == {
        "type": "CrossEncoderMultipleNegativesRankingLoss", "num_negatives": 4, "scale": 10.0, "activation_fn": "sigmoid"}
    assert params({"type": "CrossEncoderCachedMultipleNegativesRankingLoss"}).mini_batch_size == 32
    assert params({"type": "BinaryCrossEntropyLoss"}).model_dump() == {
        "type": "BinaryCrossEntropyLoss", "activation_fn": "identity", "pos_weight": None}
    plist = params({"type": "PListMLELoss"})
    assert (plist.lambda_weight, plist.respect_input_order) == ("PListMLELambdaWeight", True)
    assert params({"type": "ADRMSELoss"}).alpha == 1.0


def test_a_dense_wrapper_cannot_wrap_a_cross_encoder_loss():
    with pytest.raises(ValidationError, match="LambdaLoss"):
        params({"type": "MatryoshkaLoss", "loss": {"type": "LambdaLoss"}, "matryoshka_dims": [8]})


@pytest.mark.parametrize(("loss", "kind", "message"), [
    ("LambdaLoss", "dense", "LambdaLoss trains cross-encoders (model.kind: cross_encoder), which score text pairs, but "
                            "this model is dense: use a dense loss"),
    ("CrossEncoderMSELoss", "dense", "but this model is dense: use MSELoss"),
    ("CrossEncoderMultipleNegativesRankingLoss", "sparse",
     "but this model is sparse: wrap a sparse loss: {type: SpladeLoss, loss: {type: SparseMultipleNegativesRankingLoss}"),
    ("MultipleNegativesRankingLoss", "cross_encoder",
     "MultipleNegativesRankingLoss trains dense embedding models, but this model is a cross-encoder (model.kind: "
     "cross_encoder), which scores text pairs: use CrossEncoderMultipleNegativesRankingLoss"),
    ("SparseMarginMSELoss", "cross_encoder", "trains sparse embedding models, but this model is a cross-encoder "
                                             "(model.kind: cross_encoder), which scores text pairs: use "
                                             "CrossEncoderMarginMSELoss"),
    ("CoSENTLoss", "cross_encoder", "use a cross-encoder loss (BinaryCrossEntropyLoss, "),
])
def test_a_loss_of_another_family_is_a_recipe_error_naming_the_kind_it_needs(loss, kind, message):
    [(where, problem)] = model_kind_problems({"main": params({"type": loss})}, kind)
    assert where == ("losses", "main", "type") and message in problem, problem


def test_every_cross_encoder_loss_suits_a_cross_encoder():
    assert model_kind_problems({name: params({"type": name}) for name in CROSS_ENCODER_LOSSES}, "cross_encoder") == []


def test_a_list_of_scores_that_does_not_match_its_documents_is_a_data_error():
    loss = build_loss(params({"type": "ListNetLoss"}), LengthScorer())
    with pytest.raises(DataError, match="a row of the batch has 2 documents but 1 scores"):
        loss(LengthScorer(), [["q1", "q2"], [["a"], ["b", "c"]]], [[1.0], [0.0]])


def test_margins_of_the_wrong_width_are_a_data_error():
    loss = build_loss(params({"type": "CrossEncoderMarginMSELoss"}), LengthScorer())
    columns = [["q1", "q2"], ["p1", "p2"], ["n1", "n2"]]
    with pytest.raises(DataError, match=r"holds \(3,\) values per row, but with 1 negative column\(s\) it must hold "
                                        r"1 margins or 2 raw teacher scores"):
        loss(LengthScorer(), columns, torch.ones(2, 3))
    assert loss(LengthScorer(), columns, torch.ones(2, 2)).ndim == 0  # raw scores [positive, negative]


@pytest.mark.parametrize("name", CROSS_ENCODER_LOSSES)
def test_every_loss_trains_any_pair_scorer(name):
    """The losses use nothing of the model but score_pairs and num_labels (and parameters(), for the cached loss)."""
    num_labels = 3 if name == "CrossEntropyLoss" else 1
    model = LengthScorer(num_labels)
    contract = LOSSES[name].contract
    rows = ["what is it", "who runs", "a dog"]
    if contract.list_input:
        inputs, labels = [rows, [["a", "bb", "ccc"], ["dd"], ["e", "ffff"]]], [[2.0, 0.0, 1.0], [1.0], [0.0, 1.0]]
    else:
        inputs = [rows, ["the dog runs", "it is", "a man"], ["no", "a cat sits", "x"]][:len(contract.inputs) + 1]
        if not contract.repeated_input:
            inputs = inputs[:2]
        labels = {None: None, "score": torch.tensor([1.0, 0.0, 0.5]), "class": torch.tensor([0, 2, 1]),
                  "scores": torch.tensor([[1.0], [0.5], [-0.5]])}[contract.label]
    loss = build_loss(params({"type": name}), model)
    value = loss(model, inputs, labels)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0

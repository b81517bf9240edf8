"""embedtrain's losses compute what sentence-transformers (the reference) computes, value and gradients.

For each loss and parameter variant, the same tiny BERT is loaded by each library from the same
checkpoint, both tokenize the same batch (identically, which is checked), and each library's loss
is computed and backpropagated. The loss values agree to 1e-5 relative, and so does the gradient
of every transformer weight (matched by name) and, for SoftmaxLoss, of the classifier.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from sentence_transformers import SentenceTransformer, util
from sentence_transformers.sentence_transformer import losses as st_losses
from torch import nn

from embedtrain.losses import LOSSES, build_loss
from embedtrain.models.io import load_model

ANCHORS = [
    "a man is playing the guitar",
    "a woman eats",
    "the dog runs in the park with a ball",
    "two people ride a bus",
    "a child reads",
    "it is sunny outside today",
    "a horse is running on the beach in the sun",
    "what is the weather",
]
POSITIVES = [
    "a man plays guitar",
    "a woman is eating food in the kitchen",
    "a dog is running",
    "people riding the bus in the city",
    "the child is reading a book",
    "so sunny",
    "a horse runs",
    "the weather today is lovely",
]
NEGATIVES_1 = [
    "a cat sits on the table",
    "snow on the road",
    "an old woman plays piano",
    "the train is fast",
    "a bird sits in the rain",
    "it is raining",
    "three people sit at a table",
    "a red car",
]
NEGATIVES_2 = [
    "the river",
    "a small green book on a big chair",
    "who reads",
    "a young man rides a car on the street",
    "sad",
    "the bus is slow",
    "many people in the park",
    "where is the water",
]
SCORES = [0.9, 0.1, 0.5, 0.5, 0.9, 0.0, 0.3, 0.5]
"""Gold scores with ties (CoSENT must not penalise equally scored pairs)."""
CLASSES = [0, 1, 2, 1, 0, 2, 2, 1]


@dataclass
class Case:
    params: dict
    reference: Callable[[SentenceTransformer], nn.Module]
    columns: list[list[str]]
    labels: torch.Tensor | None = None


PAIR = [ANCHORS, POSITIVES]
SCORE_LABELS = torch.tensor(SCORES)
CLASS_LABELS = torch.tensor(CLASSES)

CASES = {
    "mnrl": Case({"type": "MultipleNegativesRankingLoss"}, st_losses.MultipleNegativesRankingLoss, PAIR),
    "mnrl-1-negative": Case({"type": "MultipleNegativesRankingLoss"}, st_losses.MultipleNegativesRankingLoss,
                            PAIR + [NEGATIVES_1]),
    "mnrl-2-negatives": Case({"type": "MultipleNegativesRankingLoss"}, st_losses.MultipleNegativesRankingLoss,
                             PAIR + [NEGATIVES_1, NEGATIVES_2]),
    "mnrl-dot-scale-0.5": Case(
        {"type": "MultipleNegativesRankingLoss", "similarity": "dot", "scale": 0.5},
        lambda model: st_losses.MultipleNegativesRankingLoss(model, scale=0.5, similarity_fct=util.dot_score),
        PAIR + [NEGATIVES_1]),
    "cosent": Case({"type": "CoSENTLoss"}, st_losses.CoSENTLoss, PAIR, SCORE_LABELS),
    "cosent-scale-10": Case({"type": "CoSENTLoss", "scale": 10.0},
                            lambda model: st_losses.CoSENTLoss(model, scale=10.0), PAIR, SCORE_LABELS),
    "cosent-dot": Case({"type": "CoSENTLoss", "similarity": "dot", "scale": 0.5},
                       lambda model: st_losses.CoSENTLoss(model, scale=0.5, similarity_fct=util.pairwise_dot_score),
                       PAIR, SCORE_LABELS),
    "cosine-similarity": Case({"type": "CosineSimilarityLoss"}, st_losses.CosineSimilarityLoss, PAIR, SCORE_LABELS),
    "softmax-3": Case({"type": "SoftmaxLoss", "num_labels": 3},
                      lambda model: st_losses.SoftmaxLoss(model, embedding_dimension=32, num_labels=3),
                      PAIR, CLASS_LABELS),
    "softmax-3-multiplication": Case(
        {"type": "SoftmaxLoss", "num_labels": 3, "concatenation_sent_multiplication": True},
        lambda model: st_losses.SoftmaxLoss(model, embedding_dimension=32, num_labels=3,
                                            concatenation_sent_multiplication=True),
        PAIR, CLASS_LABELS),
}


def gradients(module: nn.Module) -> dict[str, torch.Tensor | None]:
    return {name: parameter.grad for name, parameter in module.named_parameters()}


def assert_same_gradients(ours: nn.Module, reference: nn.Module) -> None:
    """Equal up to float32 round-off, tensor by tensor.

    The libraries write some losses with different but equivalent formulas (cross_entropy vs
    logsumexp, all pairs vs sorted suffix sums), so the last bits differ, and cancellation in the
    backward pass turns that into errors of up to ~1e-5 of a tensor's largest entry; each entry may
    differ by 1e-4 of that, with a floor of 1e-6 of the model's largest gradient for the tensors whose
    gradient is 0 in exact arithmetic (attention key biases; the last layer-norm bias under a
    distance that ignores a common shift), where round-off is all there is. A real difference in a
    loss shows up orders of magnitude above this.
    """
    assert_same_gradient_values(gradients(ours), gradients(reference))


def assert_same_gradient_values(actual: dict[str, torch.Tensor | None], expected: dict[str, torch.Tensor | None]) -> None:
    """`assert_same_gradients` on gradients already collected, by parameter name."""
    assert actual.keys() == expected.keys()
    largest = max(grad.abs().max().item() for grad in expected.values() if grad is not None)
    for name, grad in expected.items():
        if grad is None:  # only BERT's pooler, whose output no loss uses
            assert "pooler." in name and actual[name] is None, name
            continue
        atol = max(1e-4 * grad.abs().max().item(), 1e-6 * largest)
        torch.testing.assert_close(actual[name], grad, rtol=1e-5, atol=atol, msg=lambda message, name=name: f"{name}: {message}")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_loss_and_gradients_match_the_reference(case: Case, tiny_checkpoint: Path) -> None:
    torch.manual_seed(0)
    st_model = SentenceTransformer(str(tiny_checkpoint), device="cpu").train()
    st_loss = case.reference(st_model)
    model = load_model(tiny_checkpoint).train()
    loss = build_loss(LOSSES[case.params["type"]].params_model(**case.params), model)
    if hasattr(st_loss, "classifier"):
        loss.classifier.load_state_dict(st_loss.classifier.state_dict())

    st_features = [st_model.preprocess(texts) for texts in case.columns]
    features = [model.tokenize(texts) for texts in case.columns]
    for st_column, column in zip(st_features, features):
        assert torch.equal(column["input_ids"], st_column["input_ids"])
        assert (column["input_ids"] != model.input_module.tokenizer.unk_token_id).all()

    expected = st_loss(st_features, case.labels)
    value = loss(model, features, case.labels)
    expected.backward()
    value.backward()

    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert_same_gradients(model[0].auto_model, st_model[0].auto_model)
    if hasattr(st_loss, "classifier"):
        assert_same_gradients(loss.classifier, st_loss.classifier)

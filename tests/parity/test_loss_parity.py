"""embedtrain's losses compute what sentence-transformers (the reference) computes, value and gradients.

For each loss and parameter variant, the same tiny BERT is loaded by each library from the same
checkpoint, both tokenize the same batch (identically, which is checked), and each library's loss
is computed and backpropagated. The loss values agree to 1e-5 relative, and so does the gradient
of every transformer weight (matched by name) and, for SoftmaxLoss, of the classifier.
"""

from pathlib import Path

import pytest
import torch
from helpers.asserts import assert_same_gradients
from helpers.parity import Case
from helpers.texts import CLASS_LABELS, NEGATIVES_1, NEGATIVES_2, PAIR, SCORE_LABELS
from sentence_transformers import SentenceTransformer, util
from sentence_transformers.sentence_transformer import losses as st_losses

from embedtrain.losses import LOSSES, build_loss
from embedtrain.models.io import load_model

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

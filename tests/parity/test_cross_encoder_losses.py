"""embedtrain's cross-encoder losses compute what sentence-transformers' do: the same loss and the same gradient on
every parameter (rel 1e-5), for every loss and every option that changes the maths.

One reference CrossEncoder (a tiny random BertForSequenceClassification, dropout off unless a case says
otherwise) runs the reference loss on a batch; then the same model, through `ReferenceScorer` (the
`score_pairs` interface our losses call), runs our loss on the same batch. Labels go in as each trainer's
collator passes them: the reference's list labels as one tensor per row, ours as one list per row.
Lists of documents have different lengths in every listwise batch.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers.asserts import assert_same_gradient_values, gradients
from helpers.cross_encoder import ReferenceScorer, make_tiny_cross_encoder_checkpoint, reference_cross_encoder
from helpers.texts import ANCHORS, NEGATIVES_1, NEGATIVES_2, POSITIVES
from sentence_transformers import CrossEncoder
from sentence_transformers.cross_encoder import losses as ce
from torch import nn

from embedtrain.losses import LOSSES, build_loss

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = 6
PAIRS = [ANCHORS[:ROWS], POSITIVES[:ROWS]]
TRIPLETS = PAIRS + [NEGATIVES_1[:ROWS]]
QUADRUPLETS = TRIPLETS + [NEGATIVES_2[:ROWS]]
BINARY = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
SCORES_0_1 = [0.9, 0.1, 0.55, 0.3, 1.0, 0.0]
TEACHER = [2.5, -1.0, 0.3, 4.0, -3.2, 0.7]
CLASSES = [0, 2, 1, 1, 0, 2]

QUERIES = ANCHORS[:5]
DOCUMENTS = [  # lists of different lengths: 3, 1, 5, 2, 4
    [POSITIVES[0], NEGATIVES_1[0], NEGATIVES_2[0]],
    [POSITIVES[1]],
    [POSITIVES[2], NEGATIVES_1[2], NEGATIVES_2[2], NEGATIVES_1[3], POSITIVES[3]],
    [NEGATIVES_1[4], POSITIVES[4]],
    [POSITIVES[5], NEGATIVES_2[5], NEGATIVES_1[5], POSITIVES[6]],
]
GRADES = [[2.0, 0.0, 1.0], [1.0], [3.0, 0.0, 1.0, 0.0, 2.0], [0.0, 1.0], [1.0, 1.0, 0.0, 2.0]]  # with ties
RANKED = [[3.0, 2.0, 1.0], [1.0], [5.0, 4.0, 3.0, 2.0, 1.0], [2.0, 1.0], [4.0, 3.0, 2.0, 1.0]]  # listed best first
LISTS = [QUERIES, DOCUMENTS]


@dataclass
class Case:
    params: dict
    reference: Callable[[CrossEncoder], nn.Module]
    inputs: list
    labels: list | None = None  # a scalar per row, or a list per row
    num_labels: int = 1
    label_dtype: torch.dtype = torch.float32

    def reference_labels(self):
        if self.labels is None:
            return None
        if isinstance(self.labels[0], list):
            return [torch.tensor(row) for row in self.labels]  # the reference's CrossEncoderDataCollator
        return torch.tensor(self.labels, dtype=self.label_dtype)

    def our_labels(self):
        if self.labels is None or isinstance(self.labels[0], list):
            return self.labels
        return torch.tensor(self.labels, dtype=self.label_dtype)


def lambda_case(reference_options: dict, **params) -> Case:
    return Case({"type": "LambdaLoss", **params}, lambda model: ce.LambdaLoss(model, **reference_options), LISTS, GRADES)


SIGMOID, TANH = nn.Sigmoid(), nn.Tanh()

CASES = {
    # -- pairs with a label --
    "bce-binary": Case({"type": "BinaryCrossEntropyLoss"}, ce.BinaryCrossEntropyLoss, PAIRS, BINARY),
    "bce-scores-0-1": Case({"type": "BinaryCrossEntropyLoss"}, ce.BinaryCrossEntropyLoss, PAIRS, SCORES_0_1),
    "bce-pos-weight-4": Case({"type": "BinaryCrossEntropyLoss", "pos_weight": 4.0},
                             lambda m: ce.BinaryCrossEntropyLoss(m, pos_weight=torch.tensor(4)), PAIRS, BINARY),
    "bce-sigmoid": Case({"type": "BinaryCrossEntropyLoss", "activation_fn": "sigmoid"},
                        lambda m: ce.BinaryCrossEntropyLoss(m, activation_fn=SIGMOID), PAIRS, SCORES_0_1),
    "cross-entropy-3-classes": Case({"type": "CrossEntropyLoss"}, ce.CrossEntropyLoss, PAIRS, CLASSES, num_labels=3,
                                    label_dtype=torch.long),
    "cross-entropy-tanh": Case({"type": "CrossEntropyLoss", "activation_fn": "tanh"},
                               lambda m: ce.CrossEntropyLoss(m, activation_fn=TANH), PAIRS, CLASSES, num_labels=3,
                               label_dtype=torch.long),
    "mse": Case({"type": "CrossEncoderMSELoss"}, ce.MSELoss, PAIRS, TEACHER),
    "mse-sigmoid": Case({"type": "CrossEncoderMSELoss", "activation_fn": "sigmoid"},
                        lambda m: ce.MSELoss(m, activation_fn=SIGMOID), PAIRS, SCORES_0_1),
    # -- (query, positive, negatives...) with margins or raw teacher scores --
    "margin-mse-1-negative": Case({"type": "CrossEncoderMarginMSELoss"}, ce.MarginMSELoss, TRIPLETS, TEACHER),
    "margin-mse-2-margins": Case({"type": "CrossEncoderMarginMSELoss"}, ce.MarginMSELoss, QUADRUPLETS,
                                 [[t, t / 2] for t in TEACHER]),
    "margin-mse-raw-scores": Case({"type": "CrossEncoderMarginMSELoss"}, ce.MarginMSELoss, QUADRUPLETS,
                                  [[t, t - 1.0, 0.5] for t in TEACHER]),
    "margin-mse-sigmoid": Case({"type": "CrossEncoderMarginMSELoss", "activation_fn": "sigmoid"},
                               lambda m: ce.MarginMSELoss(m, activation_fn=SIGMOID), QUADRUPLETS,
                               [[0.9, 0.2, 0.1] for _ in TEACHER]),
    # -- (anchor, positive, negatives...) without a label: random in-batch negatives (seeded alike) --
    "mnrl-all-negatives": Case({"type": "CrossEncoderMultipleNegativesRankingLoss", "num_negatives": None},
                               lambda m: ce.MultipleNegativesRankingLoss(m, num_negatives=None), PAIRS),
    "mnrl-4-of-5-sampled": Case({"type": "CrossEncoderMultipleNegativesRankingLoss"},
                                ce.MultipleNegativesRankingLoss, PAIRS),
    "mnrl-2-sampled-hard-negatives": Case({"type": "CrossEncoderMultipleNegativesRankingLoss", "num_negatives": 2},
                                          lambda m: ce.MultipleNegativesRankingLoss(m, num_negatives=2), QUADRUPLETS),
    "mnrl-more-than-there-are": Case({"type": "CrossEncoderMultipleNegativesRankingLoss", "num_negatives": 50},
                                     lambda m: ce.MultipleNegativesRankingLoss(m, num_negatives=50), TRIPLETS),
    "mnrl-identity-scale-2": Case(
        {"type": "CrossEncoderMultipleNegativesRankingLoss", "activation_fn": "identity", "scale": 2.0},
        lambda m: ce.MultipleNegativesRankingLoss(m, activation_fn=None, scale=2.0), TRIPLETS),
    "mnrl-tanh": Case({"type": "CrossEncoderMultipleNegativesRankingLoss", "activation_fn": "tanh", "num_negatives": 3},
                      lambda m: ce.MultipleNegativesRankingLoss(m, activation_fn=TANH, num_negatives=3), TRIPLETS),
    "cached-mnrl-mini-batch-4": Case(
        {"type": "CrossEncoderCachedMultipleNegativesRankingLoss", "mini_batch_size": 4},
        lambda m: ce.CachedMultipleNegativesRankingLoss(m, mini_batch_size=4), TRIPLETS),
    "cached-mnrl-all-negatives-mini-batch-5": Case(
        {"type": "CrossEncoderCachedMultipleNegativesRankingLoss", "mini_batch_size": 5, "num_negatives": None,
         "scale": 5.0},
        lambda m: ce.CachedMultipleNegativesRankingLoss(m, mini_batch_size=5, num_negatives=None, scale=5.0),
        QUADRUPLETS),
    # -- (query, [documents]) with a list of scores, lists of different lengths --
    "lambda-ndcg-loss2pp": lambda_case({}),
    "lambda-ndcg-loss2pp-mu-2": lambda_case({"weighting_scheme": ce.NDCGLoss2PPScheme(mu=2.0)}, mu=2.0),
    "lambda-no-weighting": lambda_case({"weighting_scheme": ce.NoWeightingScheme()}, weighting_scheme="NoWeightingScheme"),
    "lambda-ndcg-loss1": lambda_case({"weighting_scheme": ce.NDCGLoss1Scheme()}, weighting_scheme="NDCGLoss1Scheme"),
    "lambda-ndcg-loss2": lambda_case({"weighting_scheme": ce.NDCGLoss2Scheme()}, weighting_scheme="NDCGLoss2Scheme"),
    "lambda-lambdarank": lambda_case({"weighting_scheme": ce.LambdaRankScheme()}, weighting_scheme="LambdaRankScheme"),
    "lambda-k-2-sigma-0.5-natural": lambda_case({"k": 2, "sigma": 0.5, "reduction_log": "natural"},
                                                k=2, sigma=0.5, reduction_log="natural"),
    "lambda-sigmoid-mini-batch-2": lambda_case({"activation_fn": SIGMOID, "mini_batch_size": 2},
                                               activation_fn="sigmoid", mini_batch_size=2),
    "rank-net": Case({"type": "RankNetLoss"}, ce.RankNetLoss, LISTS, GRADES),
    "rank-net-k-1-tanh": Case({"type": "RankNetLoss", "k": 1, "activation_fn": "tanh"},
                              lambda m: ce.RankNetLoss(m, k=1, activation_fn=TANH), LISTS, GRADES),
    "list-net": Case({"type": "ListNetLoss"}, ce.ListNetLoss, LISTS, GRADES),
    "list-net-sigmoid-mini-batch-3": Case({"type": "ListNetLoss", "activation_fn": "sigmoid", "mini_batch_size": 3},
                                          lambda m: ce.ListNetLoss(m, activation_fn=SIGMOID, mini_batch_size=3),
                                          LISTS, GRADES),
    "list-mle-input-order": Case({"type": "ListMLELoss"}, ce.ListMLELoss, LISTS, RANKED),
    "list-mle-label-order": Case({"type": "ListMLELoss", "respect_input_order": False},
                                 lambda m: ce.ListMLELoss(m, respect_input_order=False), LISTS, GRADES),
    "plist-mle": Case({"type": "PListMLELoss"}, ce.PListMLELoss, LISTS, RANKED),
    "plist-mle-label-order": Case({"type": "PListMLELoss", "respect_input_order": False},
                                  lambda m: ce.PListMLELoss(m, respect_input_order=False), LISTS, GRADES),
    "plist-mle-no-lambda-weight": Case({"type": "PListMLELoss", "lambda_weight": None},
                                       lambda m: ce.PListMLELoss(m, lambda_weight=None), LISTS, RANKED),
    "plist-mle-tanh-mini-batch-4": Case({"type": "PListMLELoss", "activation_fn": "tanh", "mini_batch_size": 4},
                                        lambda m: ce.PListMLELoss(m, activation_fn=TANH, mini_batch_size=4),
                                        LISTS, RANKED),
    "adr-mse": Case({"type": "ADRMSELoss"}, ce.ADRMSELoss, LISTS, GRADES),
    "adr-mse-alpha-3-sigmoid": Case({"type": "ADRMSELoss", "alpha": 3.0, "activation_fn": "sigmoid"},
                                    lambda m: ce.ADRMSELoss(m, alpha=3.0, activation_fn=SIGMOID), LISTS, GRADES),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[tuple[int, float], Path]:
    """(num_labels, dropout) -> a tiny cross-encoder checkpoint."""
    root = tmp_path_factory.mktemp("tiny-cross-encoders")
    return {(labels, dropout): make_tiny_cross_encoder_checkpoint(root / f"{labels}-{dropout}", num_labels=labels,
                                                                  dropout=dropout)
            for labels, dropout in ((1, 0.0), (3, 0.0), (1, 0.1))}


def run_reference(case: Case, model: CrossEncoder, seed: int = 0) -> tuple[torch.Tensor, dict]:
    loss = case.reference(model)
    torch.manual_seed(seed)
    value = loss(case.inputs, case.reference_labels())
    value.backward()
    return value.detach(), grads_and_reset(model)


def run_ours(params: dict, model: CrossEncoder, inputs: list, labels, seed: int = 0) -> tuple[torch.Tensor, dict]:
    scorer = ReferenceScorer(model)
    loss = build_loss(LOSSES[params["type"]].params_model(**params), scorer)
    torch.manual_seed(seed)
    value = loss(scorer, inputs, labels)
    value.backward()
    return value.detach(), grads_and_reset(model)


def grads_and_reset(model: CrossEncoder) -> dict:
    collected = {name: None if grad is None else grad.clone() for name, grad in gradients(model).items()}
    model.zero_grad(set_to_none=True)
    return collected


def assert_same(value: torch.Tensor, grads: dict, expected: torch.Tensor, expected_grads: dict) -> None:
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-7)
    assert value.item() != 0.0  # a batch that teaches something: the gradients compared are not all zero
    assert_same_gradient_values(grads, expected_grads)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_loss_and_gradients_match_the_reference(case: Case, checkpoints) -> None:
    model = reference_cross_encoder(checkpoints[case.num_labels, 0.0])
    expected, expected_grads = run_reference(case, model)
    value, grads = run_ours(case.params, model, case.inputs, case.our_labels())
    assert_same(value, grads, expected, expected_grads)


def test_margins_given_as_a_tensor_train_like_margins_given_as_lists(checkpoints) -> None:
    """The collator may hand a fixed-length `scores` label as a (batch, k) tensor or as one list per row."""
    model = reference_cross_encoder(checkpoints[1, 0.0])
    margins = [[t, t - 1.0, 0.5] for t in TEACHER]
    params = {"type": "CrossEncoderMarginMSELoss"}
    from_lists = run_ours(params, model, QUADRUPLETS, margins)
    from_tensor = run_ours(params, model, QUADRUPLETS, torch.tensor(margins))
    assert_same(*from_tensor, *from_lists)


@pytest.mark.parametrize("mini_batch_size", [1, 4, ROWS, 100])
def test_cached_mnrl_is_the_uncached_loss(mini_batch_size: int, checkpoints) -> None:
    """GradCache changes where gradients are summed, not what they are. In float64, where summing in another order
    (and over other paddings) changes nothing visible, the loss and every gradient agree to 1e-10."""
    model = reference_cross_encoder(checkpoints[1, 0.0]).double()
    options = {"num_negatives": 3, "scale": 3.0}
    uncached, uncached_grads = run_ours({"type": "CrossEncoderMultipleNegativesRankingLoss", **options}, model,
                                        QUADRUPLETS, None, seed=3)
    cached, cached_grads = run_ours({"type": "CrossEncoderCachedMultipleNegativesRankingLoss",
                                     "mini_batch_size": mini_batch_size, **options}, model, QUADRUPLETS, None, seed=3)
    assert cached.dtype == torch.float64
    torch.testing.assert_close(cached, uncached, rtol=1e-10, atol=0)
    for name, grad in uncached_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, rtol=1e-10, atol=1e-15, msg=lambda m, name=name: f"{name}: {m}")


def test_cached_mnrl_replays_dropout_as_the_reference_does(checkpoints) -> None:
    """With dropout on, each mini-batch's second pass must see the dropout masks of its first: the reference's and
    our cached losses then agree exactly, and the loss differs from a pass without dropout."""
    case = CASES["cached-mnrl-mini-batch-4"]
    model = reference_cross_encoder(checkpoints[1, 0.1])
    expected, expected_grads = run_reference(case, model, seed=7)
    value, grads = run_ours(case.params, model, case.inputs, None, seed=7)
    assert_same(value, grads, expected, expected_grads)
    model.eval()
    without_dropout, _ = run_ours(case.params, model, case.inputs, None, seed=7)
    assert abs(without_dropout.item() - value.item()) > 1e-4


@pytest.mark.parametrize("loss_type", ["CrossEncoderCachedMultipleNegativesRankingLoss", "LambdaLoss"])
def test_without_grad_the_loss_is_the_same_value(loss_type: str, checkpoints) -> None:
    """Eval losses run under no_grad: the cached loss then scores without caching, to the same value."""
    model = reference_cross_encoder(checkpoints[1, 0.0])
    inputs, labels = (TRIPLETS, None) if "Ranking" in loss_type else (LISTS, GRADES)
    trained, _ = run_ours({"type": loss_type}, model, inputs, labels, seed=1)
    scorer = ReferenceScorer(model)
    loss = build_loss(LOSSES[loss_type].params_model(type=loss_type), scorer)
    torch.manual_seed(1)
    with torch.no_grad():
        evaluated = loss(scorer, inputs, labels)
    torch.testing.assert_close(evaluated, trained, rtol=1e-6, atol=0)

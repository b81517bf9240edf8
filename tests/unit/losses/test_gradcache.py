"""Cached (GradCache) losses give the loss and gradients of their uncached counterparts, whatever the mini-batching.

With dropout, a cached loss with one mini-batch per column draws the same dropout masks as the
uncached loss, and its backward pass must replay them: gradients only match if the RNG is replayed.
"""

from pathlib import Path

import pytest
import torch
from helpers.texts import ANCHORS, QUADRUPLET

from embedtrain.losses import LOSSES, build_loss
from embedtrain.models.io import load_model

COLUMNS = QUADRUPLET
PAIRS = {
    "CachedMultipleNegativesRankingLoss": "MultipleNegativesRankingLoss",
    "CachedMultipleNegativesSymmetricRankingLoss": "MultipleNegativesSymmetricRankingLoss",
}


def loss_and_gradients(checkpoint: Path, params: dict, columns=COLUMNS, seed: int = 0, autocast: bool = False,
                       padded: bool = False):
    model = load_model(checkpoint).train()
    if padded:  # one plain forward pass per column, as the cached loss's single mini-batch per column
        model.input_module.length_chunking = None
    loss = build_loss(LOSSES[params["type"]].params_model(**params), model)
    features = [model.tokenize(texts) for texts in columns]
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):  # the forward only, as the trainer does
        value = loss(model, features, None)
    value.backward()
    return value.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def assert_same(first, second) -> None:
    assert first[0] == pytest.approx(second[0], rel=1e-5)
    assert first[1].keys() == second[1].keys()
    for name, grad in second[1].items():
        torch.testing.assert_close(first[1][name], grad, rtol=1e-4, atol=max(1e-4 * grad.abs().max().item(), 1e-7))


@pytest.mark.parametrize("cached", PAIRS)
@pytest.mark.parametrize("mini_batch", [{"mini_batch_size": 3}, {"mini_batch_num_tokens": 25}])
def test_cached_loss_equals_the_uncached_loss(cached: str, mini_batch: dict, tiny_checkpoint: Path) -> None:
    assert_same(loss_and_gradients(tiny_checkpoint, {"type": cached, **mini_batch}),
                loss_and_gradients(tiny_checkpoint, {"type": PAIRS[cached]}))


def test_token_budget_packs_rows_into_mini_batches(tiny_checkpoint: Path) -> None:
    from embedtrain.losses.gradcache import minibatch_ranges

    features = load_model(tiny_checkpoint).tokenize(ANCHORS)
    lengths = features["attention_mask"].sum(dim=1).tolist()
    ranges = minibatch_ranges(features, 32, 25)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(ANCHORS)
    assert all(end == begin_next for (_, end), (begin_next, _) in zip(ranges, ranges[1:]))
    for begin, end in ranges:
        assert end - begin == 1 or sum(lengths[begin:end]) <= 25


def test_dropout_is_replayed_in_the_backward_pass(tiny_checkpoint_with_dropout: Path) -> None:
    # Padded execution, so that both losses run the same forward passes (packed execution would embed the
    # uncached loss's columns in one pass) and draw the same dropout masks.
    one_mini_batch_per_column = {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": len(ANCHORS)}
    cached = loss_and_gradients(tiny_checkpoint_with_dropout, one_mini_batch_per_column, padded=True)
    uncached = loss_and_gradients(tiny_checkpoint_with_dropout, {"type": "MultipleNegativesRankingLoss"}, padded=True)
    assert_same(cached, uncached)
    other_masks = loss_and_gradients(tiny_checkpoint_with_dropout, {"type": "MultipleNegativesRankingLoss"}, seed=1,
                                     padded=True)
    assert other_masks[0] != pytest.approx(uncached[0], rel=1e-5)  # dropout is really on


def test_the_backward_pass_re_embeds_under_the_forward_pass_autocast(tiny_checkpoint: Path) -> None:
    from embedtrain.losses.gradcache import ForwardState

    features = load_model(tiny_checkpoint).tokenize(ANCHORS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        state = ForwardState.capture(features)
    assert not torch.is_autocast_enabled("cpu")  # as in the trainer's backward pass
    with state.replayed():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_cached_loss_under_mixed_precision_matches_the_uncached_loss(tiny_checkpoint: Path) -> None:
    """bf16 rounds differently in the two computations, so the gradients agree to bf16 precision, not float32's."""
    cached = loss_and_gradients(tiny_checkpoint, {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3},
                                autocast=True)
    uncached = loss_and_gradients(tiny_checkpoint, {"type": "MultipleNegativesRankingLoss"}, autocast=True)
    assert cached[0] == pytest.approx(uncached[0], rel=1e-2)
    flat = [torch.cat([grads[name].flatten() for name in uncached[1]]) for grads in (cached[1], uncached[1])]
    assert (flat[0] - flat[1]).norm() / flat[1].norm() < 1e-2


def test_matryoshka_over_a_cached_loss_equals_it_over_the_uncached_loss(tiny_checkpoint: Path) -> None:
    def matryoshka(inner: dict) -> dict:
        return {"type": "MatryoshkaLoss", "loss": inner, "matryoshka_dims": [32, 8]}

    assert_same(loss_and_gradients(tiny_checkpoint, matryoshka({"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3})),
                loss_and_gradients(tiny_checkpoint, matryoshka({"type": "MultipleNegativesRankingLoss"})))


@pytest.mark.parametrize(("cached", "uncached"), [
    ({"type": "CachedGISTEmbedLoss", "mini_batch_size": 3}, {"type": "GISTEmbedLoss"}),
    ({"type": "MegaBatchMarginLoss", "mini_batch_size": 3}, {"type": "MegaBatchMarginLoss", "use_mini_batched_version": False}),
], ids=["gist", "mega-batch-margin"])
def test_other_cached_losses_equal_their_uncached_form(cached: dict, uncached: dict, tiny_checkpoint: Path) -> None:
    columns = COLUMNS[:2] if cached["type"] == "MegaBatchMarginLoss" else COLUMNS
    guide = {"guide": str(tiny_checkpoint)} if "GIST" in cached["type"] else {}
    assert_same(loss_and_gradients(tiny_checkpoint, cached | guide, columns),
                loss_and_gradients(tiny_checkpoint, uncached | guide, columns))

"""Which losses make the trainer average gradients itself on several processes: the cached ones, wrapped or not
(their averaging over processes is tested for real in tests/e2e/test_cached_gather.py)."""

from pathlib import Path

import pytest
from torch import nn

from embedtrain.engine.gradient_sync import replays_backward
from embedtrain.losses import LOSSES, build_loss
from embedtrain.models.io import load_model

CACHED = {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 2}
CASES = {
    "cached": ([CACHED], True),
    "cached in matryoshka": ([{"type": "MatryoshkaLoss", "loss": CACHED, "matryoshka_dims": [32, 8]}], True),
    "uncached": ([{"type": "MultipleNegativesRankingLoss"}, {"type": "CoSENTLoss"}], False),
    "one of two": ([{"type": "CoSENTLoss"}, CACHED], True),
}


@pytest.mark.parametrize(("entries", "expected"), CASES.values(), ids=CASES.keys())
def test_cached_losses_are_found(entries: list[dict], expected: bool, tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    losses = nn.ModuleDict({str(index): build_loss(LOSSES[entry["type"]].params_model(**entry), model)
                            for index, entry in enumerate(entries)})
    assert replays_backward(losses) is expected

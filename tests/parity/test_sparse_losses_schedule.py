"""The SPLADE regulariser weights warm up as the reference's trainer makes them, and the trainer reports its progress.

The reference's trainer always adds SpladeRegularizerWeightSchedulerCallback to a SpladeLoss; here that
callback is driven by hand (train begin, then step begin at chosen steps) next to embedtrain's
SpladeLoss, which the trainer drives through `set_training_progress`. At every step the weights and
the loss terms on the same batch are equal.
"""

from pathlib import Path

import pytest
import yaml
from accelerate.state import AcceleratorState
from helpers.sparse_models import make_tiny_mlm_checkpoint, splade_model
from helpers.sparse_parity import DOCUMENT_WEIGHT, MNRL, QUERY_WEIGHT, SparseCase, assert_same_terms, run_loss
from helpers.texts import TRIPLET
from sentence_transformers.sparse_encoder import losses as st_losses
from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import SpladeRegularizerWeightSchedulerCallback
from transformers import TrainerControl, TrainerState

from embedtrain.engine.run import run_training
from embedtrain.losses import LOSSES, build_loss
from embedtrain.losses.cosent import CoSENTLoss
from embedtrain.recipe.loading import load_recipe

TOTAL_STEPS = 30


@pytest.fixture(scope="session")
def mlm_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_mlm_checkpoint(tmp_path_factory.mktemp("tiny-mlm"))


SCHEDULES = {
    # The defaults of both: quadratic over the first third (10 of 30 steps).
    "default-quadratic": ({}, {}, QUERY_WEIGHT, [0, 1, 4, 9, 10, 11, 29]),
    "linear-half": ({"regularizer_warmup_schedule": "linear", "regularizer_warmup_ratio": 0.5},
                    {"scheduler_type": "linear", "warmup_ratio": 0.5}, QUERY_WEIGHT, [0, 3, 14, 15, 29]),
    "no-query-regularizer": ({}, {}, None, [0, 5, 10]),
}


@pytest.mark.parametrize(("ours_options", "callback_options", "query_weight", "steps"), SCHEDULES.values(), ids=SCHEDULES.keys())
def test_weights_and_loss_follow_the_reference_schedule(ours_options, callback_options, query_weight, steps,
                                                        mlm_checkpoint: Path) -> None:
    model = splade_model(mlm_checkpoint)
    weights = {"document_regularizer_weight": DOCUMENT_WEIGHT, "query_regularizer_weight": query_weight}
    reference = st_losses.SpladeLoss(model, st_losses.SparseMultipleNegativesRankingLoss(model), **weights)
    callback = SpladeRegularizerWeightSchedulerCallback(reference, **callback_options)
    state, control = TrainerState(max_steps=TOTAL_STEPS), TrainerControl()
    callback.on_train_begin(None, state, control)
    params = {"type": "SpladeLoss", "loss": MNRL, **weights, **ours_options}
    embedtrain_loss = build_loss(LOSSES["SpladeLoss"].params_model(**params), model)
    case = SparseCase(params, lambda _: reference, TRIPLET)
    for step in steps:
        state.global_step = step
        callback.on_step_begin(None, state, control)
        embedtrain_loss.set_training_progress(step, TOTAL_STEPS)
        # The same formula, operation for operation: equal floats (or both None, without a query regulariser).
        assert embedtrain_loss.document_regularizer_weight == reference.document_regularizer_weight
        assert embedtrain_loss.query_regularizer_weight == reference.query_regularizer_weight
        expected_terms, _ = run_loss(reference, model, case)
        terms, _ = run_loss(lambda features, labels: embedtrain_loss(model, features, labels), model, case)
        assert_same_terms(terms, expected_terms)
    assert reference.document_regularizer_weight == DOCUMENT_WEIGHT  # the last step is past the warm-up
    assert callback._calculate_weight_value(steps[1], DOCUMENT_WEIGHT) < DOCUMENT_WEIGHT  # and the second within it


def test_trainer_reports_the_steps_done_before_every_batch(monkeypatch, tmp_path: Path, tiny_checkpoint: Path,
                                                           sts_csv: Path) -> None:
    """Every batch of an accumulated step sees the optimizer steps completed before it, and the run's total. The first
    call, before the loop, sets the start for an evaluation before training."""
    AcceleratorState._reset_state(reset_partial_state=True)
    calls = []
    monkeypatch.setattr(CoSENTLoss, "set_training_progress", lambda self, step, total: calls.append((step, total)))
    recipe = {
        "model": {"base": str(tiny_checkpoint)},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
        "training": {"output_dir": str(tmp_path / "run"), "batch_size": 4, "max_steps": 3,
                     "gradient_accumulation_steps": 2},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    run_training(load_recipe(path, []))
    assert calls == [(0, 3), (0, 3), (0, 3), (1, 3), (1, 3), (2, 3), (2, 3)]

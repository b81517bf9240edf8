"""Same recipe, same seed: embedtrain's training steps are the reference trainer's steps.

The batch order (a seeded permutation) and the RNG stream that dropout draws from (seeded right
before training, then one draw per epoch for the DataLoader) match sentence-transformers' trainer,
so the per-step losses of a model with dropout agree when embedtrain runs batches padded as the
reference does. Length-aware execution (the default) draws dropout masks of other shapes, so with
dropout the losses then agree only in distribution; without dropout they agree step by step.
"""

import json

import pytest
import yaml
from accelerate.state import AcceleratorState
from datasets import load_dataset

from embedtrain.engine.run import run_training
from embedtrain.recipe.loading import load_recipe


@pytest.mark.parametrize("dropout, length_chunking", [(True, False), (False, True)],
                         ids=["dropout-padded", "no-dropout-length-aware"])
def test_per_step_losses_match_the_reference_trainer(dropout, length_chunking, tmp_path, tiny_checkpoint,
                                                     tiny_checkpoint_with_dropout, sts_csv):
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss
    from transformers import TrainerCallback

    steps = 10  # 48 rows / batch 8: the second epoch starts at step 7
    checkpoint = tiny_checkpoint_with_dropout if dropout else tiny_checkpoint
    reference_losses = {}

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                reference_losses[state.global_step] = logs["loss"]

    model = SentenceTransformer(str(checkpoint))
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "reference"), max_steps=steps, per_device_train_batch_size=8, learning_rate=1e-3,
        warmup_steps=0.2, seed=5, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True)
    train = load_dataset("csv", data_files=str(sts_csv), split="train")
    SentenceTransformerTrainer(model=model, args=arguments, train_dataset=train, loss=CoSENTLoss(model),
                               callbacks=[Record()]).train()

    AcceleratorState._reset_state(reset_partial_state=True)
    recipe = {"model": {"base": str(checkpoint)}, "losses": {"cosent": {"type": "CoSENTLoss"}},
              "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
              "training": {"output_dir": str(tmp_path / "run"), "max_steps": steps, "batch_size": 8,
                           "learning_rate": 1e-3, "warmup_ratio": 0.2, "seed": 5, "logging_steps": 1,
                           "length_chunking": length_chunking}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    run_training(load_recipe(tmp_path / "recipe.yaml"))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ours = {record["step"]: record["loss"] for record in records if "loss" in record}

    assert sorted(ours) == sorted(reference_losses) == list(range(1, steps + 1))
    for step in ours:
        assert ours[step] == pytest.approx(reference_losses[step], rel=1e-4, abs=1e-5), step

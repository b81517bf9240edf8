"""The engine trains a cross-encoder like any other model: its losses get the raw text columns and the labels
(list columns and list labels as lists), and checkpoints, resume, evaluation, eval loss, the final save and the dry
run's measurements work for it.

The engine tests use minimal losses defined in this file (BCE with logits on `score_pairs`, and an MSE over a
row's candidate list), so that what the trainer hands a loss can be recorded; a recipe trains with the real
cross-encoder losses through `embedtrain train`.
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from accelerate.state import AcceleratorState
from datasets import Dataset
from helpers.observers import StopAt
from helpers.tiny_cross_encoders import PAIRS_OF_TEXTS
from sentence_transformers import CrossEncoder as ReferenceCrossEncoder
from torch import nn
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.commands.validate import validate_recipe
from embedtrain.data.contract import ColumnContract, ColumnMapping
from embedtrain.data.training_data import PreparedDataset, TextCollator, TrainingRows
from embedtrain.engine.dry_run import _measure, _token_sample, parameter_counts
from embedtrain.engine.trainer import Trainer, build_accelerator
from embedtrain.errors import ExitCode
from embedtrain.models import load_model
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.recipe.loading import load_recipe
from embedtrain.recipe.training import TrainingConfig

pytestmark = pytest.mark.usefixtures("one_thread", "fresh_accelerate_state")


class PairBCE(nn.Module):
    """BCE with logits of (first, second) pairs against 0/1 labels, as the reference's BinaryCrossEntropyLoss."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list, object]] = []

    def forward(self, model: CrossEncoder, inputs: list[list[str]], labels: torch.Tensor) -> torch.Tensor:
        self.calls.append((inputs, labels))
        logits = model.score_pairs(list(zip(inputs[0], inputs[1]))).squeeze(-1)
        return F.binary_cross_entropy_with_logits(logits, labels.float())

    def set_training_progress(self, step: int, total_steps: int) -> None:
        pass


class ListMSE(PairBCE):
    """MSE of each (query, candidate) logit against the candidate's score: a row's candidates and scores are lists."""

    def forward(self, model: CrossEncoder, inputs: list[list], labels: list[list[float]]) -> torch.Tensor:
        self.calls.append((inputs, labels))
        pairs = [(query, document) for query, documents in zip(*inputs) for document in documents]
        targets = torch.tensor([score for row in labels for score in row], device=model.device)
        return F.mse_loss(model.score_pairs(pairs).squeeze(-1), targets)


PAIR_CONTRACT = ColumnContract(inputs=("sentence1", "sentence2"), label="binary")
LIST_CONTRACT = ColumnContract(inputs=("query", "documents"), label="list_scores")  # one score per document


def pairs_dataset(name: str, prompts: tuple = ()) -> PreparedDataset:
    firsts, seconds = zip(*PAIRS_OF_TEXTS)
    rows = Dataset.from_dict({"sentence1": list(firsts), "sentence2": list(seconds),
                              "label": [index % 2 for index in range(len(firsts))]})
    mapping = ColumnMapping((("sentence1", "sentence1"), ("sentence2", "sentence2")), "label", inferred=False)
    return PreparedDataset(name, rows, mapping, PAIR_CONTRACT, "bce", prompts=prompts)


def lists_dataset() -> PreparedDataset:
    seconds = [second for _, second in PAIRS_OF_TEXTS]
    documents = [seconds[index:index + 1 + index % 3] for index in range(6)]  # 1, 2 or 3 candidates per row
    rows = Dataset.from_dict({"query": [first for first, _ in PAIRS_OF_TEXTS[:6]], "documents": documents,
                              "label": [[float(rank) for rank in range(len(row), 0, -1)] for row in documents]})
    mapping = ColumnMapping((("query", "query"), ("documents", "documents")), "label", inferred=False)
    return PreparedDataset("lists", rows, mapping, LIST_CONTRACT, "list")


class PredictingEvaluator:
    """An evaluator as the cross-encoder evaluators are: it calls only `model.predict`."""

    primary_metric = "dev_mean_score"

    def __call__(self, model: CrossEncoder) -> dict[str, float]:
        return {"dev_mean_score": float(model.predict(PAIRS_OF_TEXTS, batch_size=4).mean())}


def trainer(checkpoint: Path, output_dir: Path, observer=None, **settings) -> Trainer:
    output_dir.mkdir(parents=True, exist_ok=True)  # run_training's job (with its lock), skipped here
    config = TrainingConfig(output_dir=str(output_dir), batch_size=4, learning_rate=1e-3, logging_steps=1,
                            **{"max_steps": 4, "save_steps": 2, "eval_steps": 2} | settings)
    torch.manual_seed(0)
    model = build_model(ModelConfig(base=str(checkpoint), kind="cross_encoder"))
    return Trainer(accelerator=build_accelerator(config), config=config, model=model,
                   losses={"bce": PairBCE(), "list": ListMSE()},
                   train_sets={"pairs": pairs_dataset("pairs"), "lists": lists_dataset()},
                   eval_sets={"dev": pairs_dataset("dev")}, evaluators=[PredictingEvaluator()], observer=observer)


def test_a_cross_encoder_trains_evaluates_checkpoints_and_saves(tiny_checkpoint, tmp_path):
    run = trainer(tiny_checkpoint, tmp_path / "run")
    result = run.train()

    losses = run.module.losses
    pair_inputs, pair_labels = losses["bce"].calls[0]
    assert all(isinstance(text, str) for column in pair_inputs for text in column)
    assert isinstance(pair_labels, torch.Tensor) and pair_labels.dtype == torch.float32
    list_inputs, list_labels = losses["list"].calls[0]
    assert all(isinstance(row, list) for row in list_inputs[1]) and isinstance(list_labels, list)
    assert [len(row) for row in list_inputs[1]] == [len(row) for row in list_labels]

    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if "eval_dev_loss" in record] == [0, 2, 4]
    assert all("dev_mean_score" in record for record in records if "eval_dev_loss" in record)
    assert all(torch.isfinite(torch.tensor(record["loss"])) for record in records if "loss" in record)
    assert result.steps == 4 and "eval_dev_loss" in result.metrics

    final = load_model(result.final_dir)
    assert isinstance(final, CrossEncoder)
    scores = final.predict(PAIRS_OF_TEXTS)
    assert torch.equal(scores, run.model.predict(PAIRS_OF_TEXTS))
    reference = ReferenceCrossEncoder(str(result.final_dir), device="cpu").predict(PAIRS_OF_TEXTS)
    assert float((scores - torch.as_tensor(reference)).abs().max()) < 1e-5
    checkpoint = load_model(run.checkpoints.path_for(2) / "model")
    assert isinstance(checkpoint, CrossEncoder) and not torch.equal(checkpoint.predict(PAIRS_OF_TEXTS), scores)


def test_a_resumed_cross_encoder_run_ends_as_an_uninterrupted_one(tiny_checkpoint, tmp_path):
    uninterrupted = trainer(tiny_checkpoint, tmp_path / "whole").train()
    AcceleratorState._reset_state(reset_partial_state=True)
    with pytest.raises(KeyboardInterrupt):
        trainer(tiny_checkpoint, tmp_path / "cut", observer=StopAt(step=3)).train()
    AcceleratorState._reset_state(reset_partial_state=True)
    resumed = trainer(tiny_checkpoint, tmp_path / "cut").train(resume=True)
    whole, cut = load_model(uninterrupted.final_dir), load_model(resumed.final_dir)
    for (name, expected), actual in zip(whole.state_dict().items(), cut.state_dict().values()):
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6, msg=name)


def test_the_collator_prepends_the_dataset_prompt_to_the_first_texts():
    dataset = pairs_dataset("pairs", prompts=("query: ", "query: "))
    batch = TextCollator()(TrainingRows({"pairs": dataset}).__getitems__([0, 1]))
    assert batch["features"][0] == [f"query: {PAIRS_OF_TEXTS[0][0]}", f"query: {PAIRS_OF_TEXTS[1][0]}"]
    assert batch["features"][1] == [PAIRS_OF_TEXTS[0][1], PAIRS_OF_TEXTS[1][1]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [0.0, 1.0]


def test_the_collator_keeps_list_inputs_and_list_scores_as_lists_and_other_labels_as_tensors():
    rows = TrainingRows({"lists": lists_dataset()}).__getitems__([1, 2])
    batch = TextCollator()(rows)
    assert batch["features"][1] == rows["texts"][1] and [len(row) for row in batch["features"][1]] == [2, 3]
    assert batch["labels"] == [[2.0, 1.0], [3.0, 2.0, 1.0]]
    margins = TextCollator()(rows | {"labels": [[0.5, 1.0], [2.0, 3.0]], "label_kind": "scores"})
    assert margins["labels"].shape == (2, 2) and margins["labels"].dtype == torch.float32
    classes = TextCollator()(rows | {"labels": [0, 2], "label_kind": "class"})
    assert classes["labels"].dtype == torch.long


def test_the_dry_run_measures_a_cross_encoder_step(tiny_checkpoint, tmp_path):
    run = trainer(tiny_checkpoint, tmp_path / "dry")
    plan = run.set_up()
    plan.loader.set_epoch(0)
    batches = list(plan.loader.epoch_batches())[:2]
    assert _token_sample(batches, length_chunking=True) is None  # pairs are tokenized inside the loss
    estimate = _measure(run, plan, batches)
    assert estimate is not None and estimate.seconds_per_step > 0
    counts = parameter_counts(run)
    assert counts[0].name == "model.model (BertForSequenceClassification)" and counts[0].trainable > 0


def write_recipe(tmp_path: Path, base: Path, source: Path, loss: dict, model: dict | None = None) -> Path:
    recipe = {"model": {"base": str(base), "kind": "cross_encoder", "prompts": {"query": "query: "}} | (model or {}),
              "losses": {"main": loss},
              "datasets": {"train": {"pairs": {"source": str(source), "prompts": "query"}}},
              "training": {"output_dir": str(tmp_path / "run"), "max_steps": 3, "batch_size": 4, "logging_steps": 1,
                           "learning_rate": 1e-3, "eval_before_training": False}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_embedtrain_train_trains_a_cross_encoder_recipe(tiny_checkpoint, binary_csv, tmp_path):
    recipe = write_recipe(tmp_path, tiny_checkpoint, binary_csv, {"type": "BinaryCrossEntropyLoss"})
    result = CliRunner().invoke(app, ["train", str(recipe)])
    assert result.exit_code == 0, result.output
    final = tmp_path / "run" / "final"
    ours = load_model(final)
    assert isinstance(ours, CrossEncoder) and ours.prompts == {"query": "query: "}
    theirs = ReferenceCrossEncoder(str(final), device="cpu")
    scores = ours.predict(PAIRS_OF_TEXTS, prompt="query: ")
    assert float((scores - torch.as_tensor(theirs.predict(PAIRS_OF_TEXTS, prompt="query: "))).abs().max()) < 1e-5
    assert "pipeline_tag: text-ranking" in (final / "README.md").read_text()


def test_class_labels_beyond_the_cross_encoders_labels_are_data_errors(tiny_checkpoint, tmp_path):
    source = tmp_path / "classes.csv"
    source.write_text("sentence1,sentence2,label\na dog,a cat,0\nthe man,a man,3\n", encoding="utf-8")
    recipe = write_recipe(tmp_path, tiny_checkpoint, source, {"type": "CrossEntropyLoss"},
                          {"cross_encoder": {"num_labels": 3}})
    result = CliRunner().invoke(app, ["validate-dataset", str(recipe)])
    assert result.exit_code == ExitCode.DATA_ERROR, result.output
    reports, _ = validate_recipe(load_recipe(recipe))
    assert any("integers from 0 to 2 (num_labels is 3); 1 rows do not, at row 1" in error for error in reports[0].errors)

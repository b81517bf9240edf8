"""Distillation from a teacher model named in the recipe (MSELoss / EmbedDistillLoss `teacher:`).

Oracle: the reference losses fed, as labels, the reference teacher's `encode` of the same texts (what its
users precompute by hand); loss and gradients must match. Also: the data contract needs no label column
with a teacher and refuses one clearly, and misconfigurations fail before training naming the key and the fix.
"""

import json
from pathlib import Path

import pytest
import torch
from helpers.asserts import assert_same_gradients
from helpers.texts import ANCHORS, POSITIVES
from helpers.tiny_models import make_tiny_checkpoint
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer import losses as st_losses
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.commands.validate import validate_file
from embedtrain.errors import RecipeError
from embedtrain.losses import LOSSES, build_loss, loss_contract
from embedtrain.models.io import load_model, save_model
from embedtrain.modules import Dense

runner = CliRunner()


@pytest.fixture(scope="session")
def teachers(tmp_path_factory) -> dict[str, Path]:
    """Tiny teachers: another random BERT with the student's vocabulary; the same saved with a shorter length limit
    (its texts are re-tokenized); and one with a Dense layer to 16 dimensions (narrower than the student's 32)."""
    plain = make_tiny_checkpoint(tmp_path_factory.mktemp("teacher"), seed=1)
    short = tmp_path_factory.mktemp("teacher-short")
    st_teacher = SentenceTransformer(str(plain), device="cpu")
    st_teacher.max_seq_length = 6  # shorter than some texts: truncation must happen on the teacher's side
    st_teacher.save(str(short))
    narrow = tmp_path_factory.mktemp("teacher-16d")
    model = load_model(plain)
    torch.manual_seed(2)
    model.append(Dense(32, 16, activation="identity"))
    save_model(model, narrow)
    return {"same-tokenizer": plain, "retokenized": short, "16d": narrow}


def reference_labels(teacher: Path, columns: list[list[str]], teacher_embeds: str) -> torch.Tensor:
    st_teacher = SentenceTransformer(str(teacher), device="cpu")
    # encode returns inference-mode tensors, which autograd refuses to save: clone them into normal ones.
    if teacher_embeds == "first_column":
        return st_teacher.encode(columns[0], convert_to_tensor=True).clone()
    return torch.stack([st_teacher.encode(texts, convert_to_tensor=True) for texts in columns], dim=1)


CASES = {
    "mse-each-column": ({"type": "MSELoss"}, st_losses.MSELoss, "each_column"),
    "mse-first-column": ({"type": "MSELoss", "teacher_embeds": "first_column"}, st_losses.MSELoss, "first_column"),
    "embed-distill-cosine": ({"type": "EmbedDistillLoss"}, st_losses.EmbedDistillLoss, "each_column"),
    "embed-distill-l2-first-column": ({"type": "EmbedDistillLoss", "distance_metric": "l2", "teacher_embeds": "first_column"},
                                      lambda model: st_losses.EmbedDistillLoss(model, distance_metric="l2"), "first_column"),
}


@pytest.mark.parametrize("teacher_kind", ["same-tokenizer", "retokenized"])
@pytest.mark.parametrize("name", CASES)
def test_teacher_loss_matches_the_reference_fed_teacher_encodings(name, teacher_kind, tiny_checkpoint, teachers):
    params, reference, teacher_embeds = CASES[name]
    teacher, columns = teachers[teacher_kind], [ANCHORS, POSITIVES]
    st_model = SentenceTransformer(str(tiny_checkpoint), device="cpu").train()
    st_loss = reference(st_model)
    model = load_model(tiny_checkpoint).train()
    loss = build_loss(LOSSES[params["type"]].params_model(**params, teacher=str(teacher)), model).train()
    assert loss.teacher.must_retokenize == (teacher_kind == "retokenized")
    assert not loss.teacher.model.training and not any(p.requires_grad for p in loss.teacher.parameters())

    expected = st_loss([st_model.preprocess(texts) for texts in columns], reference_labels(teacher, columns, teacher_embeds))
    value = loss(model, [model.tokenize(texts) for texts in columns], None)
    expected.backward()
    value.backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert_same_gradients(model[0].auto_model, st_model[0].auto_model)


# Each modifier runs its inner loss several times per step (once per dimension, once per layer) yet the
# teacher must embed each column once; Matryoshka also truncates the teacher's embeddings.
MODIFIERS = {
    "MatryoshkaLoss": ({"matryoshka_dims": [32, 16, 8]},
                       lambda st_model, inner: st_losses.MatryoshkaLoss(st_model, inner, [32, 16, 8])),
    "AdaptiveLayerLoss": ({"n_layers_per_step": -1},
                          lambda st_model, inner: st_losses.AdaptiveLayerLoss(st_model, inner, n_layers_per_step=-1)),
}


@pytest.mark.parametrize("modifier", MODIFIERS)
def test_modifiers_run_the_teacher_once_per_step(modifier, tiny_checkpoint, teachers):
    options, reference_modifier = MODIFIERS[modifier]
    teacher, columns = teachers["same-tokenizer"], [ANCHORS, POSITIVES]
    st_model = SentenceTransformer(str(tiny_checkpoint), device="cpu").train()
    st_loss = reference_modifier(st_model, st_losses.MSELoss(st_model))
    model = load_model(tiny_checkpoint).train()
    params = LOSSES[modifier].params_model(type=modifier, **options, loss={"type": "MSELoss", "teacher": str(teacher)})
    loss = build_loss(params, model)
    calls = []
    loss.loss.teacher.model.register_forward_hook(lambda *_: calls.append(1))

    expected = st_loss([st_model.preprocess(texts) for texts in columns], reference_labels(teacher, columns, "each_column"))
    value = loss(model, [model.tokenize(texts) for texts in columns], None)
    expected.backward()
    value.backward()
    assert len(calls) == len(columns)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert_same_gradients(model[0].auto_model, st_model[0].auto_model)


def test_teacher_embeddings_of_another_width_fail_before_training_with_the_fix(tiny_checkpoint, teachers):
    model = load_model(tiny_checkpoint)
    mse = LOSSES["MSELoss"].params_model(type="MSELoss", teacher=str(teachers["16d"]))
    with pytest.raises(RecipeError, match=r"16 dimensions, the model into 32.*model\.dense: \{out_features: 16\}.*projection_dim: 16"):
        build_loss(mse, model)
    wrong_projection = LOSSES["EmbedDistillLoss"].params_model(type="EmbedDistillLoss", teacher=str(teachers["16d"]),
                                                               projection_dim=8)
    with pytest.raises(RecipeError, match="projection_dim is 8.*set projection_dim: 16"):
        build_loss(wrong_projection, model)
    projected = LOSSES["EmbedDistillLoss"].params_model(type="EmbedDistillLoss", teacher=str(teachers["16d"]),
                                                        projection_dim=16)
    loss = build_loss(projected, model)
    value = loss(model, [model.tokenize(ANCHORS)], None)
    assert value.ndim == 0 and torch.isfinite(value)


def test_teacher_embeds_without_a_teacher_is_refused():
    with pytest.raises(ValueError, match="teacher_embeds applies only with a `teacher:` model"):
        LOSSES["MSELoss"].params_model(type="MSELoss", teacher_embeds="first_column")


def test_with_a_teacher_the_contract_takes_no_label_without_it_the_embedding_label():
    without = loss_contract(LOSSES["MSELoss"].params_model(type="MSELoss"))
    with_teacher = loss_contract(LOSSES["EmbedDistillLoss"].params_model(type="EmbedDistillLoss", teacher="some/teacher"))
    assert without.label == "embedding" and with_teacher.label is None
    assert with_teacher.inputs == without.inputs and with_teacher.repeated_input == without.repeated_input


@pytest.fixture
def pairs_with_label(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    rows = [{"english": a, "other": b, "label": [0.1] * 32} for a, b in zip(ANCHORS, POSITIVES)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_validate_dataset_passes_teacher_data_without_a_label_column(tmp_path, pairs_with_label):
    report = validate_file(str(pairs_with_label), "MSELoss", loss_options={"teacher": "some/teacher"},
                           columns={"sentence": "english", "other": "other"})
    assert "label" in report.errors[0] and "ignore_columns" in report.errors[0]  # the label column is neither used nor ignored
    path = tmp_path / "texts.csv"
    path.write_text("english,other\n" + "".join(f"{a},{b}\n" for a, b in zip(ANCHORS, POSITIVES)), encoding="utf-8")
    assert validate_file(str(path), "MSELoss", loss_options={"teacher": "some/teacher"}).errors == []
    without_teacher = validate_file(str(path), "MSELoss")
    assert "needs a embedding label" in without_teacher.errors[0]


@pytest.mark.parametrize("columns", [None, "sentence=english,other=other,label=label"], ids=["inferred", "explicit"])
def test_a_label_column_with_a_teacher_is_a_clear_error(pairs_with_label, columns):
    arguments = ["validate-dataset", "--data", str(pairs_with_label), "--loss", "MSELoss",
                 "--loss-option", "teacher=some/teacher", "--json"] + (["--columns", columns] if columns else [])
    result = runner.invoke(app, arguments)
    assert result.exit_code == 3, result.output
    [error] = json.loads(result.stdout)["datasets"][0]["errors"]
    assert "'label'" in error and "`teacher:` model computes the target embeddings" in error
    assert "ignore_columns" in error and "remove `teacher:`" in error


def test_recipe_validation_accepts_a_teacher_loss_on_text_only_data(tmp_path, tiny_checkpoint):
    data = tmp_path / "texts.csv"
    data.write_text("english,other\n" + "".join(f"{a},{b}\n" for a, b in zip(ANCHORS, POSITIVES)), encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""
model: {{base: {tiny_checkpoint}}}
losses:
  distill: {{type: MSELoss, teacher: {tiny_checkpoint}, teacher_embeds: first_column}}
datasets:
  train:
    pairs: {{source: {data}, columns: {{sentence: english, other: other}}}}
training: {{output_dir: {tmp_path / 'run'}}}
""", encoding="utf-8")
    result = runner.invoke(app, ["validate-dataset", str(recipe), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["datasets"][0]["columns"] == "sentence=english, other_1=other"


def test_a_teacher_that_cannot_be_used_names_the_loss_key(tmp_path, tiny_checkpoint, teachers):
    data = tmp_path / "texts.csv"
    data.write_text("sentence\n" + "".join(f"{a}\n" for a in ANCHORS), encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"""
model: {{base: {tiny_checkpoint}}}
losses:
  distill: {{type: MSELoss, teacher: {teachers['16d']}}}
datasets:
  train:
    texts: {{source: {data}}}
training: {{output_dir: {tmp_path / 'run'}, max_steps: 1}}
""", encoding="utf-8")
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "losses.distill: MSELoss: teacher" in result.output and "projection_dim: 16" in result.output

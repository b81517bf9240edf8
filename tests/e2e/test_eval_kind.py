"""`embedtrain eval` chooses the model's kind from the model and the evaluators; `--kind` overrides it; evaluators
that cannot score that kind, or sparse and dense evaluators together, exit 2 naming the fix."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode
from embedtrain.evaluation import EVALUATORS, build_evaluator
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.io import load_model, save_model

runner = CliRunner()


def evaluate(tmp_path: Path, model: Path, *arguments: str) -> dict[str, float]:
    output = tmp_path / "metrics.json"
    result = runner.invoke(app, ["eval", str(model), *arguments, "--output", str(output)])
    assert result.exit_code == 0, result.output
    return json.loads(output.read_text())["metrics"]


def fails(model: Path, *arguments: str) -> str:
    result = runner.invoke(app, ["eval", str(model), *arguments])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    return " ".join(result.output.split())


def library_metrics(model, type_name: str, source: Path) -> dict[str, float]:
    return build_evaluator(EVALUATORS[type_name].params_model(type=type_name, name=type_name, source=str(source)),
                           "test")(model)


@pytest.fixture(scope="module")
def saved_sparse(tmp_path_factory, tiny_mlm_checkpoint) -> Path:
    path = tmp_path_factory.mktemp("saved-sparse") / "model"
    save_model(build_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse")), path)
    return path


@pytest.fixture(scope="module")
def saved_dense(tmp_path_factory, tiny_checkpoint) -> Path:
    path = tmp_path_factory.mktemp("saved-dense") / "model"
    save_model(load_model(tiny_checkpoint), path)
    return path


def test_a_masked_lm_checkpoint_given_sparse_evaluators_is_built_as_splade(tmp_path, tiny_mlm_checkpoint, sts_csv):
    metrics = evaluate(tmp_path, tiny_mlm_checkpoint, "--evaluator", f"sparse_sts={sts_csv}")
    splade = build_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse"))
    assert metrics == pytest.approx(library_metrics(splade, "sparse_sts", sts_csv), abs=1e-6)
    # SPLADE scores every vocabulary id (a dense model with mean pooling would have the hidden size's 32 dimensions).
    dimensions = metrics["sparse_sts_active_dims"] / (1 - metrics["sparse_sts_sparsity_ratio"])
    assert dimensions == pytest.approx(splade.embedding_dimension) == splade[0].auto_model.config.vocab_size


def test_a_masked_lm_checkpoint_given_dense_evaluators_loads_dense(tmp_path, tiny_mlm_checkpoint, sts_csv):
    metrics = evaluate(tmp_path, tiny_mlm_checkpoint, "--evaluator", f"sts={sts_csv}")
    assert metrics == pytest.approx(library_metrics(load_model(tiny_mlm_checkpoint), "sts", sts_csv), abs=1e-6)


def test_kind_sparse_overrides_the_choice(tmp_path, tiny_mlm_checkpoint, sts_csv):
    metrics = evaluate(tmp_path, tiny_mlm_checkpoint, "--evaluator", f"sts={sts_csv}", "--kind", "sparse")
    splade = build_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse"))
    assert metrics == pytest.approx(library_metrics(splade, "sts", sts_csv), abs=1e-6)


def test_a_saved_sparse_model_keeps_its_kind_and_dense_evaluators_that_work_still_run(tmp_path, saved_sparse, sts_csv):
    metrics = evaluate(tmp_path, saved_sparse, "--evaluator", f"sts={sts_csv}")
    assert metrics == pytest.approx(library_metrics(load_model(saved_sparse), "sts", sts_csv), abs=1e-6)


@pytest.mark.parametrize("model, arguments, fragments", [
    ("mlm", ["--evaluator", "sparse_sts={sts}", "--kind", "dense"], ["sts for sparse_sts", "remove --kind dense"]),
    ("dense", ["--evaluator", "sparse_sts={sts}"], ["is dense (it is a plain checkpoint that is not a masked-LM",
                                                    "sts for sparse_sts", "--kind sparse"]),
    ("saved_dense", ["--evaluator", "sparse_ir={beir}"], ["it is a saved dense model", "ir for sparse_ir",
                                                          "--kind sparse"]),
    ("saved_sparse", ["--evaluator", "sts={sts}", "--kind", "dense"], ["--kind dense", "saved sparse model",
                                                                       "remove --kind"]),
    ("saved_sparse", ["--evaluator", "translation={parallel}"], ["--evaluator translation: needs dense embeddings",
                                                                 "it is a saved sparse model",
                                                                 "use sparse_translation for translation"]),
    ("mlm", ["--evaluator", "mse={parallel}", "--set", "teacher=t", "--kind", "sparse"],
     ["needs dense embeddings", "use sparse_mse for mse", "remove --kind sparse"]),
    ("saved_sparse", ["--evaluator", "sts={sts}", "--evaluator", "sparse_ir={beir}"],
     ["sparse evaluators (sparse_ir) and dense ones (sts)", "use sparse_sts for sts"]),
    ("mlm", ["--evaluator", "sparse_sts={sts}", "--evaluator", "translation={parallel}"],
     ["dense ones (translation)", "use sparse_translation for translation"]),
    ("mlm", ["--evaluator", "sparse_sts={sts}", "--evaluator", "paraphrase_mining={sts}"],
     ["dense ones (paraphrase_mining)", "evaluate paraphrase_mining in another call"]),
    ("mlm", ["--evaluator", "sparse_sts={sts}", "--kind", "medium"], ["Invalid value for '--kind'", "'medium' is not one of"]),
], ids=["kind-dense-on-sparse-evaluators", "plain-dense-checkpoint", "saved-dense-model", "kind-dense-on-saved-sparse",
        "dense-only-evaluator-on-sparse", "dense-only-evaluator-with-kind-sparse", "mixed", "mixed-dense-only",
        "mixed-without-sparse-namesake", "unknown-kind"])
def test_kind_mismatches_exit_2_naming_the_fix(model, arguments, fragments, request, tiny_mlm_checkpoint,
                                               tiny_checkpoint, sts_csv, beir_folder, parallel_csv):
    models = {"mlm": tiny_mlm_checkpoint, "dense": tiny_checkpoint}
    path = models.get(model) or request.getfixturevalue(model)
    sources = {"{sts}": sts_csv, "{beir}": beir_folder, "{parallel}": parallel_csv}
    for placeholder, source in sources.items():
        arguments = [argument.replace(placeholder, str(source)) for argument in arguments]
    output = fails(path, *arguments)
    for fragment in fragments:
        assert fragment in output, output

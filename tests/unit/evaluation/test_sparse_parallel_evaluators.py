"""sparse_mse and sparse_translation: the mean squared error of sparse matrices, the kinds of model and teacher they
take, and their bad inputs (a missing column, a teacher that gives no sparse embeddings), each refused with the exit
code and a message naming the fix. Their values against the reference are in tests/parity/test_sparse_evaluators.py."""

import pytest
import torch
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode
from embedtrain.evaluation import EVALUATORS
from embedtrain.evaluation.mse_evaluator import mean_squared_error
from embedtrain.evaluation.registry import evaluator_for, model_kind_problem
from embedtrain.models.io import load_model, save_model

runner = CliRunner()


def random_sparse(rows: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    dense = torch.rand(rows, dim, generator=generator)
    return (dense * (torch.rand(rows, dim, generator=generator) < 0.2)).to_sparse()


def test_the_mean_squared_error_of_sparse_matrices_is_the_dense_one() -> None:
    a, b = random_sparse(6, 50, seed=0), random_sparse(6, 50, seed=1)  # supports overlap only in part
    expected = torch.mean((a.to_dense() - b.to_dense()) ** 2).item()
    assert mean_squared_error(a, b) == pytest.approx(expected, rel=1e-6)
    assert mean_squared_error(a.to_dense(), b.to_dense()) == pytest.approx(expected, rel=1e-6)
    assert mean_squared_error(a, a) == 0


@pytest.mark.parametrize("dense, sparse", [("mse", "sparse_mse"), ("translation", "sparse_translation")])
def test_a_sparse_model_is_pointed_from_the_dense_evaluator_to_the_sparse_one(dense, sparse) -> None:
    assert EVALUATORS[sparse].evaluator_class.model_kinds == ("sparse",)
    assert evaluator_for(dense, "sparse") == sparse and evaluator_for(sparse, "dense") == dense
    assert model_kind_problem(dense, "sparse").endswith(f": use {sparse}")
    assert model_kind_problem(sparse, "dense").endswith(f": use {dense}")


def run_eval(model, *arguments: str) -> tuple[int, str]:
    result = runner.invoke(app, ["eval", str(model), *arguments])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("type_name", ["sparse_mse", "sparse_translation"])
@pytest.mark.parametrize("header, columns, message", [
    ("english", None, "expected 2 text columns (source, target) but found 1: ['english']"),
    ("english,german", "source=english,target=germn",
     "'target' maps to column 'germn', which the data does not have (did you mean 'german'?)"),
], ids=["one-column", "mapped-column-missing"])
def test_a_missing_column_exits_3_naming_it(type_name, header, columns, message, tmp_path, tiny_mlm_checkpoint):
    data = tmp_path / "parallel.csv"
    data.write_text(header + "\n" + "".join(",".join(f"text {row} {n}" for n in range(header.count(",") + 1)) + "\n"
                                            for row in range(3)))
    options = ["--set", f"teacher={tiny_mlm_checkpoint}"] if type_name == "sparse_mse" else []
    code, output = run_eval(tiny_mlm_checkpoint, "--evaluator", f"{type_name}={data}", *options,
                            *(["--columns", columns] if columns else []))
    assert code == ExitCode.DATA_ERROR
    assert f"--evaluator {type_name} ({type_name})" in output and message in output


def test_sparse_mse_needs_a_teacher(tiny_mlm_checkpoint, parallel_csv) -> None:
    code, output = run_eval(tiny_mlm_checkpoint, "--evaluator", f"sparse_mse={parallel_csv}")
    assert code == ExitCode.INVALID_INPUT
    assert "teacher: Field required" in output


@pytest.mark.parametrize("teacher, what", [("plain", "a plain checkpoint that is not a masked-LM one (*ForMaskedLM)"),
                                           ("saved", "a saved dense model")])
def test_a_teacher_without_sparse_embeddings_exits_2(teacher, what, tmp_path, tiny_checkpoint, tiny_mlm_checkpoint,
                                                     parallel_csv) -> None:
    path = tiny_checkpoint
    if teacher == "saved":
        path = tmp_path / "dense"
        save_model(load_model(tiny_checkpoint), path)
    code, output = run_eval(tiny_mlm_checkpoint, "--evaluator", f"sparse_mse={parallel_csv}", "--set",
                            f"teacher={path}")
    assert code == ExitCode.INVALID_INPUT
    assert f"evaluator sparse_mse: the teacher '{path}' is {what}" in output
    assert "a saved sparse model, or a masked-LM checkpoint (built as SPLADE)" in output


@pytest.mark.parametrize("kind, problem", [("sparse", None), ("dense", "sparse_mse scores a sparse embedding model")])
def test_a_recipe_knows_their_metrics_and_their_model_kind(kind, problem, tmp_path, parallel_csv, sts_csv) -> None:
    import yaml

    from embedtrain.errors import RecipeError
    from embedtrain.recipe.loading import load_recipe

    recipe = {"model": {"base": "tiny", "kind": kind},
              "losses": {"l": {"type": "SpladeLoss" if kind == "sparse" else "CoSENTLoss",
                               **({"loss": {"type": "SparseCoSENTLoss"}, "document_regularizer_weight": 3e-5}
                                  if kind == "sparse" else {})}},
              "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
              "evaluators": [{"type": "sparse_mse", "name": "distill", "source": str(parallel_csv), "teacher": "t"},
                             {"type": "sparse_translation", "name": "translate", "source": str(parallel_csv)}],
              "training": {"output_dir": "runs/x", "metric_for_best_model": "distill_negative_mse"}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    if problem is None:
        assert {"distill_negative_mse", "distill_active_dims", "translate_mean_accuracy",
                "translate_sparsity_ratio"} <= set(load_recipe(path).metric_names())
    else:
        with pytest.raises(RecipeError, match=f"{problem}.*use mse"):
            load_recipe(path)


@pytest.mark.parametrize("type_name", sorted(name for name in EVALUATORS if name.startswith("sparse_")))
def test_sparse_evaluators_refuse_truncate_dim(type_name, tiny_mlm_checkpoint, parallel_csv) -> None:
    # A sparse embedding's dimensions are vocabulary ids (or latents), not a Matryoshka prefix; the reference's sparse
    # evaluators have no truncate_dim, and cutting a sparse tensor's columns fails in torch.
    params = EVALUATORS[type_name].params_model
    assert params.model_fields["truncate_dim"].annotation is type(None)
    code, output = run_eval(tiny_mlm_checkpoint, "--evaluator", f"{type_name}={parallel_csv}", "--set",
                            "truncate_dim=8")
    assert code == ExitCode.INVALID_INPUT
    assert "truncate_dim: Input should be None" in output

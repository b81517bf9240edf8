"""`embedtrain eval` on a tiny random BERT: metrics as the library computes them, JSON output, exit codes."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode
from embedtrain.evaluation import EVALUATORS, build_evaluator
from embedtrain.models.io import load_model

runner = CliRunner()


def library_metrics(checkpoint: Path, **params) -> dict[str, float]:
    evaluator = build_evaluator(EVALUATORS[params["type"]].params_model(**params), "test")
    return evaluator(load_model(checkpoint))


def test_several_evaluators_in_one_call(tmp_path, tiny_checkpoint, sts_csv, beir_folder) -> None:
    output = tmp_path / "out" / "metrics.json"
    result = runner.invoke(app, ["eval", str(tiny_checkpoint), "--evaluator", "sts", "--data", str(sts_csv),
                                 "--evaluator", f"beir={beir_folder}", "--batch-size", "4", "--output", str(output)])
    assert result.exit_code == 0, result.output
    written = json.loads(output.read_text())
    assert written["model"] == str(tiny_checkpoint)
    expected = library_metrics(tiny_checkpoint, type="sts", name="sts", source=str(sts_csv)) | \
        library_metrics(tiny_checkpoint, type="ir", name="ir", source=str(beir_folder))
    assert list(written["metrics"]) == list(expected)
    assert written["metrics"] == pytest.approx(expected, abs=1e-6)
    assert "ir_cosine_ndcg@10" in result.output


def test_columns_split_and_options(tmp_path, tiny_checkpoint) -> None:
    data = tmp_path / "pairs.csv"
    data.write_text("q,a,y\n" + "".join(f"text number {i},answer {i % 3},{i % 2}\n" for i in range(10)))
    result = runner.invoke(app, ["eval", str(tiny_checkpoint), "--evaluator", "binary", "--data", str(data),
                                 "--columns", "sentence1=q,sentence2=a,label=y", "--split", "train[:6]",
                                 "--set", "similarity_fn_names=[cosine, dot]", "--output", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert {"binary_cosine_ap", "binary_dot_ap", "binary_max_ap"} <= set(metrics)


def test_fail_under_exits_with_below_threshold(tiny_checkpoint, sts_csv) -> None:
    command = ["eval", str(tiny_checkpoint), "--evaluator", "sts", "--data", str(sts_csv)]
    value = library_metrics(tiny_checkpoint, type="sts", name="sts", source=str(sts_csv))["sts_spearman_cosine"]
    passing = runner.invoke(app, command + ["--fail-under", f"sts_spearman_cosine={value - 0.01}"])
    assert passing.exit_code == 0, passing.output
    failing = runner.invoke(app, command + ["--fail-under", f"sts_spearman_cosine={value + 0.01}"])
    assert failing.exit_code == ExitCode.BELOW_THRESHOLD == 5
    assert "below threshold: sts_spearman_cosine" in failing.output


@pytest.mark.parametrize("arguments, message", [
    (["--evaluator", "stss", "--data", "x.csv"], "unknown evaluator (did you mean 'sts'?)"),
    (["--evaluator", "sts"], "needs data"),
    (["--evaluator", "sts", "--data", "{sts}", "--fail-under", "sts_spearman=0.5"], "did you mean 'sts_spearman_cosine'"),
    (["--evaluator", "sts", "--data", "{sts}", "--set", "margin=0.1"], "margin: Extra inputs are not permitted"),
], ids=["unknown-evaluator", "no-data", "unknown-metric", "unknown-option"])
def test_invalid_arguments_exit_2(arguments, message, tiny_checkpoint, sts_csv) -> None:
    arguments = [argument.replace("{sts}", str(sts_csv)) for argument in arguments]
    result = runner.invoke(app, ["eval", str(tiny_checkpoint), *arguments])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert message in " ".join(result.output.split())


def test_bad_columns_exit_3(tiny_checkpoint, sts_csv) -> None:
    result = runner.invoke(app, ["eval", str(tiny_checkpoint), "--evaluator", "sts", "--data", str(sts_csv),
                                 "--columns", "sentence1=sentence1,sentence2=sentence3,label=score"])
    assert result.exit_code == ExitCode.DATA_ERROR, result.output
    assert "'sentence3'" in result.output


def test_evaluators_sharing_texts_embed_them_once(monkeypatch, tiny_checkpoint, binary_csv) -> None:
    from embedtrain.models.embedder import SentenceEmbedder

    embedded: list[str] = []
    encode = SentenceEmbedder.encode

    def counting_encode(self, texts, **options):
        embedded.extend(texts)
        return encode(self, texts, **options)

    monkeypatch.setattr(SentenceEmbedder, "encode", counting_encode)
    result = runner.invoke(app, ["eval", str(tiny_checkpoint), "--evaluator", f"binary={binary_csv}",
                                 "--evaluator", f"paraphrase_mining={binary_csv}"])
    assert result.exit_code == 0, result.output
    assert "paraphrase_mining_average_precision" in result.output
    assert len(embedded) == len(set(embedded))  # the second evaluator found every text already embedded


def test_sparse_evaluators_on_a_saved_sparse_model(tmp_path, tiny_mlm_checkpoint, sts_csv, triplet_csv,
                                                   reranking_jsonl) -> None:
    from embedtrain.models import save_model
    from embedtrain.models.build import build_model
    from embedtrain.models.config import ModelConfig

    model_path = tmp_path / "splade"
    save_model(build_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse")), model_path)
    output = tmp_path / "metrics.json"
    result = runner.invoke(app, ["eval", str(model_path), "--evaluator", f"sparse_sts={sts_csv}", "--evaluator",
                                 f"sparse_triplet={triplet_csv}", "--evaluator", f"sparse_reranking={reranking_jsonl}",
                                 "--output", str(output)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(output.read_text())["metrics"]
    expected = library_metrics(model_path, type="sparse_sts", name="sparse_sts", source=str(sts_csv)) | \
        library_metrics(model_path, type="sparse_triplet", name="sparse_triplet", source=str(triplet_csv)) | \
        library_metrics(model_path, type="sparse_reranking", name="sparse_reranking", source=str(reranking_jsonl))
    assert list(metrics) == list(expected)
    assert metrics == pytest.approx(expected, abs=1e-6)
    assert {"sparse_sts_spearman_dot", "sparse_sts_active_dims", "sparse_triplet_anchor_active_dims",
            "sparse_reranking_corpus_active_dims"} <= set(metrics)


@pytest.fixture(scope="module")
def saved_splade(tmp_path_factory, tiny_mlm_checkpoint) -> Path:
    from embedtrain.models import save_model
    from embedtrain.models.build import build_model
    from embedtrain.models.config import ModelConfig

    path = tmp_path_factory.mktemp("saved-splade") / "model"
    save_model(build_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse")), path)
    return path


def eval_metrics(tmp_path: Path, model: Path, *arguments: str) -> dict[str, float]:
    output = tmp_path / "metrics.json"
    result = runner.invoke(app, ["eval", str(model), *arguments, "--output", str(output)])
    assert result.exit_code == 0, result.output
    return json.loads(output.read_text())["metrics"]


def test_sparse_mse_on_a_saved_sparse_model(tmp_path, saved_splade, parallel_csv) -> None:
    from helpers.tiny_models import make_tiny_checkpoint

    teacher = make_tiny_checkpoint(tmp_path / "teacher", seed=1, masked_lm=True)  # a plain masked-LM: built as SPLADE
    metrics = eval_metrics(tmp_path, saved_splade, "--evaluator", f"sparse_mse={parallel_csv}", "--set",
                           f"teacher={teacher}", "--fail-under", "sparse_mse_negative_mse=-100")
    expected = library_metrics(saved_splade, type="sparse_mse", name="sparse_mse", source=str(parallel_csv),
                               teacher=str(teacher))
    assert list(metrics) == ["sparse_mse_negative_mse", "sparse_mse_active_dims", "sparse_mse_sparsity_ratio"]
    assert metrics == pytest.approx(expected, rel=1e-6)
    assert metrics["sparse_mse_negative_mse"] < 0 < metrics["sparse_mse_active_dims"]


def test_sparse_translation_on_a_saved_sparse_model(tmp_path, saved_splade, parallel_csv) -> None:
    metrics = eval_metrics(tmp_path, saved_splade, "--evaluator", "sparse_translation", "--data", str(parallel_csv),
                           "--fail-under", "sparse_translation_mean_accuracy=0")
    expected = library_metrics(saved_splade, type="sparse_translation", name="sparse_translation",
                               source=str(parallel_csv))
    assert list(metrics) == ["sparse_translation_src2trg_accuracy", "sparse_translation_trg2src_accuracy",
                             "sparse_translation_mean_accuracy", "sparse_translation_active_dims",
                             "sparse_translation_sparsity_ratio"]
    assert metrics == pytest.approx(expected, rel=1e-6)

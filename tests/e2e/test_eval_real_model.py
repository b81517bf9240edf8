"""The published figures of all-MiniLM-L6-v2, reproduced through `embedtrain eval` on the offline data copies."""

import json

import pytest
from helpers.data import SHARED_DATA
from typer.testing import CliRunner

from embedtrain.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def evaluate(tmp_path, model, *arguments) -> dict[str, float]:
    output = tmp_path / "metrics.json"
    result = runner.invoke(app, ["eval", str(model), *arguments, "--output", str(output)])
    assert result.exit_code == 0, result.output
    return json.loads(output.read_text())["metrics"]


def test_stsb_test_spearman(tmp_path, minilm_path) -> None:
    metrics = evaluate(tmp_path, minilm_path, "--evaluator", "sts", "--data", str(SHARED_DATA / "stsb" / "test.csv"))
    assert metrics["sts_spearman_cosine"] == pytest.approx(0.8203, abs=0.0005)


def test_trecqa_beir_test_ndcg(tmp_path, minilm_path) -> None:
    metrics = evaluate(tmp_path, minilm_path, "--evaluator", "beir", "--data", str(SHARED_DATA / "trecqa" / "beir_test"))
    assert metrics["ir_cosine_ndcg@10"] == pytest.approx(0.600, abs=0.002)


def test_splade_tiny_masked_lm_checkpoint_is_evaluated_as_splade(tmp_path, splade_tiny_path) -> None:
    """SPLADE-tiny is installed as a plain BertForMaskedLM checkpoint: given sparse_ir, eval builds it as SPLADE and
    gives the reference SparseEncoder's figures on TrecQA test (README, "Sparse encoders": 0.6900, 18.6 / 91.1)."""
    assert not (splade_tiny_path / "modules.json").exists()  # the plain masked-LM path, not a saved sparse model
    metrics = evaluate(tmp_path, splade_tiny_path, "--evaluator",
                       f"sparse_ir={SHARED_DATA / 'trecqa' / 'beir_test'}")
    assert metrics["sparse_ir_dot_ndcg@10"] == pytest.approx(0.690, abs=1e-3)
    assert metrics["sparse_ir_query_active_dims"] == pytest.approx(18.629, abs=1e-3)
    assert metrics["sparse_ir_corpus_active_dims"] == pytest.approx(91.101, abs=1e-3)

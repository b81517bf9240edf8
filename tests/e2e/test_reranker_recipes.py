"""The shipped TrecQA-style reranker recipes trained for real from all-MiniLM-L6-v2's encoder, offline through the test
mirror, then reranking all-MiniLM-L6-v2's top 20 on TrecQA test (the bi-encoder as first stage; nDCG@10 0.600).

- reranker-bce, on TrecQA's labelled train pairs (the mirror's stand-in for WikiQA), by the commands of the README
  ("Cross-encoders", the headline figure): `embedtrain train` and `embedtrain eval`; the reranked order beats the
  bi-encoder's.
- reranker-lambda, on TrecQA's train candidate lists in the shape its `mine:` step writes (labeled-list:
  `helpers.mirror.trecqa_lists`, standing in for the mined Natural Questions lists); its reranking of the same top 20
  improves on its untrained head's.
"""

import json
from pathlib import Path

import pytest
from helpers.data import SHARED_DATA
from helpers.mirror import trecqa_lists, write_jsonl
from typer.testing import CliRunner

from embedtrain.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("offline_mirror")]
ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
BASE_NDCG = 0.600  # all-MiniLM-L6-v2 alone on TrecQA test (README, "Evaluating a saved model")


def invoke(*arguments: str) -> None:
    result = runner.invoke(app, [str(argument) for argument in arguments])
    assert result.exit_code == 0, result.output


def rerank_trecqa_test(model: Path, output: Path) -> tuple[float, float]:
    """(first stage, reranked) nDCG@10 of `model` reranking all-MiniLM-L6-v2's top 20 on TrecQA test."""
    invoke("eval", model, "--evaluator", f"cross_encoder_nanobeir={SHARED_DATA / 'trecqa' / 'beir_test'}",
           "--set", "rerank_k=20", "--set", "first_stage=sentence-transformers/all-MiniLM-L6-v2",
           "--set", "always_rerank_positives=false", "--output", output)
    metrics = json.loads(output.read_text())["metrics"]
    return metrics["beir_test_R20_base_ndcg@10"], metrics["beir_test_R20_ndcg@10"]


def test_the_bce_reranker_reranks_minilm_better_on_trecqa_test(tmp_path):
    # The recipe as shipped, on the stand-in's 4,718 pairs for 3 epochs (measured: 0.600 -> 0.654; the README's 5
    # epochs, about as many pairs as its one epoch of WikiQA's 20,360, reach 0.673 but take 15 minutes of CI; 2 epochs
    # only 0.607). Its evaluators (NanoBEIR, WikiQA) are left out to save time.
    invoke("train", ROOT / "recipes" / "reranker-bce.yaml", "--output-dir", tmp_path / "run", "--set", "evaluators=[]",
           "--set", "training.epochs=3")
    base, reranked = rerank_trecqa_test(tmp_path / "run" / "final", tmp_path / "metrics.json")
    assert base == pytest.approx(BASE_NDCG, abs=0.002)
    assert reranked > base + 0.03


def test_the_listwise_reranker_learns_to_rank_trecqa_candidates(tmp_path):
    # The recipe's mined Natural Questions lists replaced by TrecQA's train questions with their own candidates.
    # 342 lists instead of the recipe's 5,000. On TrecQA dev, LambdaLoss on so few lists does not beat the bi-encoder
    # (0.606 at best, after 3 to 4 epochs of lists of 10, against 0.657), so this test asks that it learned to rank,
    # from its new head's order (0.231 on test): 2 epochs of lists of 5 at 5e-5, a quarter of the README run's
    # pairs, to keep CI short.
    lists = write_jsonl(tmp_path / "trecqa-train-lists.jsonl", trecqa_lists("train", max_negatives=4))
    dataset = f"{{trecqa: {{source: {lists}, columns: {{query: query, documents: documents, label: labels}}}}}}"
    evaluator = (f"[{{type: cross_encoder_nanobeir, source: {SHARED_DATA / 'trecqa' / 'beir_test'}, rerank_k: 20, "
                 "first_stage: sentence-transformers/all-MiniLM-L6-v2, always_rerank_positives: false}]")
    invoke("train", ROOT / "recipes" / "reranker-lambda.yaml", "--output-dir", tmp_path / "run",
           "--set", f"evaluators={evaluator}", "--set", f"datasets.train={dataset}", "--set", "training.epochs=2",
           "--set", "training.learning_rate=5e-5")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ndcg = [record["beir_test_R20_ndcg@10"] for record in records if "beir_test_R20_ndcg@10" in record]
    assert len(ndcg) >= 2  # before training (the new head's order) and after
    assert ndcg[-1] > ndcg[0] + 0.1

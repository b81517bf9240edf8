"""Card subjects built directly (no training): a recipe, a model and hand-written dataset and evaluator summaries,
for the unit tests of the card's parts."""

from embedtrain.card.dataset_card import DatasetSummary
from embedtrain.card.evaluation_card import EvaluatorSummary
from embedtrain.card.model_card import CardSubject
from embedtrain.data.checks import TokenStats
from embedtrain.recipe.schema import Recipe

PAIRS = DatasetSummary(
    name="pairs", split="train", source="data/pairs.csv", rows=12, streamed=False,
    columns="sentence1=q, sentence2=a, label=y", loss="main",
    token_stats={"q": TokenStats(sampled=12, minimum=3, mean=5.25, p95=8, maximum=9, truncated=0.0)},
    samples=[{"q": "what is a | pipe", "a": "a character " * 40, "y": "1"}], texts=["what is a | pipe", "a character " * 40])
STS_DEV = EvaluatorSummary(name="dev", type="sts", source="data/dev.csv", split="train",
                           metrics=["dev_pearson_cosine", "dev_spearman_cosine"], primary="dev_spearman_cosine",
                           parameters={})


def recipe_for(kind: str, tmp_path, **model) -> Recipe:
    return Recipe.model_validate({
        "model": {"base": "org/encoder", "kind": kind} | model, "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"pairs": {"source": "data/pairs.csv"}}},
        "evaluators": [{"type": "sts", "name": "dev", "source": "data/dev.csv"}],
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 4}})


def subject_for(model, recipe: Recipe, evaluators=(STS_DEV,)) -> CardSubject:
    return CardSubject(model, recipe, [PAIRS], list(evaluators), [evaluator.primary for evaluator in evaluators])

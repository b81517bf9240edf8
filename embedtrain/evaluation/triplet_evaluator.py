from typing import ClassVar, Literal

from pydantic import Field

from embedtrain.data.contract import ColumnContract
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, SimilarityNames, register_evaluator
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import PAIRWISE


class TripletParams(EvaluatorParams):
    type: Literal["triplet"]
    similarity_fn_names: SimilarityNames = Field(default_factory=lambda: ["cosine"], min_length=1)
    margin: float = Field(0.0, description="a triplet counts as correct when sim(a, p) > sim(a, n) + margin")


@register_evaluator(TripletParams)
class TripletEvaluator(Evaluator):
    """Share of (anchor, positive, negative) triplets where the anchor is closer to the positive."""

    contract: ClassVar = ColumnContract(inputs=("anchor", "positive", "negative"))

    @classmethod
    def metric_keys(cls, params: TripletParams) -> list[str]:
        keys = [f"{fn}_accuracy" for fn in params.similarity_fn_names]
        return keys + (["max_accuracy"] if len(params.similarity_fn_names) > 1 else [])

    @classmethod
    def primary_key(cls, params: TripletParams) -> str:
        return "max_accuracy" if len(params.similarity_fn_names) > 1 else f"{params.similarity_fn_names[0]}_accuracy"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        # Anchors are queries, positives and negatives documents (their prompts and routes differ on asymmetric
        # models), each side embedded on its own, as the reference does.
        batch_size, truncate_dim = self.params.batch_size, self.params.truncate_dim
        a = self.embed(model, self.columns["anchor"], batch_size, truncate_dim, "query", task="query")
        p = self.embed(model, self.columns["positive"], batch_size, truncate_dim, "document", task="document")
        n = self.embed(model, self.columns["negative"], batch_size, truncate_dim, "document", task="document")
        metrics = {}
        for fn in self.params.similarity_fn_names:
            correct = PAIRWISE[fn](a, p) > PAIRWISE[fn](a, n) + self.params.margin
            metrics[f"{fn}_accuracy"] = correct.float().mean().item()
        if len(self.params.similarity_fn_names) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        return metrics

"""What `embedtrain mine` (and a recipe's `mine:` step) may set: the reference's rules for keeping negatives.

The names and defaults are those of the reference's `mine_hard_negatives`. Every rule applies to the candidates of
one query, scored by the embedding model or, with a rescoring model, by that model:

- the candidate pool is the `range_max` + (largest number of positive rows of a query) nearest corpus texts, so
  that a query keeps `range_max` candidates once its own positives are taken out;
- a query's own positives are never negatives;
- `absolute_margin` drops a candidate scoring above (lowest positive score - margin), `relative_margin` one above
  (lowest positive score - |lowest positive score| x margin), `max_score` one above it, `min_score` one below it;
- of the candidates left, in score order, the first `range_min` are skipped and those up to rank `range_max` kept;
- `sampling: top` takes the first `num_negatives` of those, `random` draws `num_negatives` of them (seeded).
"""

from typing import Literal

from pydantic import Field, model_validator

from embedtrain.config import StrictModel
from embedtrain.similarity import SimilarityName

OutputFormat = Literal["triplet", "n-tuple", "labeled-pair", "labeled-list"]
RescoreKind = Literal["auto", "cross_encoder", "dense", "sparse"]
"""What a re-scoring model is: auto (what its folder says: a saved model's kind, a cross-encoder for a trained
sequence classifier), or said outright (a plain checkpoint has to be)."""


class MiningOptions(StrictModel):
    num_negatives: int = Field(3, ge=1, description="negatives per query")
    range_min: int = Field(0, ge=0, description="skip this many of the best candidates left after the filters (false "
                                               "negatives hide among the closest texts)")
    range_max: int | None = Field(
        None, gt=0, description="keep candidates up to this rank (default: range_min + num_negatives, x10 when a "
        "margin or max_score filters candidates, + the largest number of positives of a query)")
    absolute_margin: float | None = Field(
        None, description="drop a candidate unless it scores at least this much below the query's lowest positive")
    relative_margin: float | None = Field(
        None, ge=0, lt=1, description="drop a candidate unless it scores below the lowest positive score minus this "
        "share of its magnitude (0.05: 5% below; NV-Retriever's TopK-PercPos)")
    max_score: float | None = Field(None, description="drop candidates scoring above this")
    min_score: float | None = Field(None, description="drop candidates scoring below this")
    sampling: Literal["top", "random"] = Field("top", description="top: the best candidates left; random: a random "
                                                                  "draw of them")
    seed: int = Field(0, description="seed of the random draw (sampling: random)")
    output_format: OutputFormat = Field(
        "triplet", description="triplet: (anchor, positive, negative) rows; n-tuple: (anchor, positive, negative_1, "
        "..., negative_n), only queries with all n negatives; labeled-pair: (anchor, text, label 1/0); labeled-list: "
        "(anchor, [positive, negatives...], [1, 0, ...])")
    output_scores: bool = Field(
        False, description="add the scores: a `scores` list per row ([positive, negatives...]); in labeled-pair and "
        "labeled-list formats, scores replace the 0/1 labels")
    query_prompt: str | None = Field(None, description="prefix for queries (default: the model's `query` prompt)")
    query_prompt_name: str | None = Field(None, description="a named prompt of the model for queries")
    corpus_prompt: str | None = Field(None, description="prefix for corpus texts (default: the model's `document` "
                                                        "prompt)")
    corpus_prompt_name: str | None = Field(None, description="a named prompt of the model for corpus texts")
    similarity: SimilarityName | None = Field(
        None, description="how the embedding model scores a query and a text (default: the model's own similarity)")
    batch_size: int = Field(32, gt=0, description="texts (or pairs, when rescoring) per forward pass")
    chunk_size: int = Field(8192, gt=0, description="queries and corpus texts scored at once: the search holds "
                                                    "chunk_size x chunk_size scores")
    search: Literal["exact", "faiss"] = Field(
        "exact", description="exact: chunked top-k in torch; faiss: a flat faiss index (pip install faiss-cpu), dense "
        "models with cosine or dot similarity")

    @model_validator(mode="after")
    def _ranges_fit(self) -> "MiningOptions":
        if self.range_max is not None and self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be smaller than range_max ({self.range_max})")
        if self.range_max is not None and self.num_negatives > self.range_max - self.range_min:
            raise ValueError(f"num_negatives ({self.num_negatives}) is larger than the {self.range_max - self.range_min}"
                             f" candidates between range_min ({self.range_min}) and range_max ({self.range_max}); "
                             f"lower num_negatives or range_min, or raise range_max")
        if self.min_score is not None and self.max_score is not None and self.min_score >= self.max_score:
            raise ValueError(f"min_score ({self.min_score}) must be smaller than max_score ({self.max_score})")
        return self

    def candidate_range(self, most_positives: int, rescored: bool) -> int:
        """range_max, or the reference's default: room for num_negatives after range_min and the positives, ten
        times as many negatives when a filter may drop candidates (min_score counts only when rescoring, as in the
        reference)."""
        if self.range_max is not None:
            return self.range_max
        filtered = (self.absolute_margin is not None or self.relative_margin is not None or self.max_score is not None
                    or (rescored and self.min_score is not None))
        return self.range_min + self.num_negatives * (10 if filtered else 1) + most_positives

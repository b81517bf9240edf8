"""Information retrieval: embed queries and a corpus, rank the corpus for each query, score against qrels."""

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from embedtrain.config import StrictModel
from embedtrain.data.source import is_local
from embedtrain.errors import DataError
from embedtrain.evaluation.beir import RetrievalData, load_beir_folder, load_beir_hub
from embedtrain.evaluation.metrics import retrieval_metrics
from embedtrain.evaluation.registry import Evaluator, EvaluatorParams, SimilarityNames, embed_rows, register_evaluator
from embedtrain.evaluation.retrieval import top_k_search
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import MATRIX

RETRIEVAL_METRICS = ("accuracy@k", "precision@k", "recall@k", "ndcg@k", "mrr@k", "map@k")
"""In the order the reference reports them."""


class RetrievalOptions(StrictModel):
    """Cut-offs, score functions, prompts and chunking of a retrieval evaluation (the reference's defaults)."""

    mrr_at_k: list[int] = Field(default_factory=lambda: [10], min_length=1)
    ndcg_at_k: list[int] = Field(default_factory=lambda: [10], min_length=1)
    accuracy_at_k: list[int] = Field(default_factory=lambda: [1, 3, 5, 10], min_length=1)
    precision_recall_at_k: list[int] = Field(default_factory=lambda: [1, 3, 5, 10], min_length=1)
    map_at_k: list[int] = Field(default_factory=lambda: [100], min_length=1)
    score_functions: SimilarityNames = Field(default_factory=lambda: ["cosine"], min_length=1)
    main_score_function: Literal["cosine", "dot", "euclidean", "manhattan"] | None = Field(
        None, description="the function of the primary metric (default: the first of score_functions)")
    corpus_chunk_size: int = Field(50000, gt=0, description="corpus rows scored at once (memory: queries x chunk)")
    corpus_batch_size: int | None = Field(
        None, gt=0, description="texts per forward pass for the corpus (default batch_size); corpus texts are "
        "length-sorted, so a larger batch adds little padding")

    @model_validator(mode="after")
    def _main_is_evaluated(self) -> "RetrievalOptions":
        if self.main_score_function is not None and self.main_score_function not in self.score_functions:
            raise ValueError(f"main_score_function {self.main_score_function!r} is not in score_functions "
                             f"{self.score_functions}")
        return self

    def cutoffs(self) -> dict[str, list[int]]:
        return {"accuracy@k": self.accuracy_at_k, "precision@k": self.precision_recall_at_k,
                "recall@k": self.precision_recall_at_k, "ndcg@k": self.ndcg_at_k, "mrr@k": self.mrr_at_k,
                "map@k": self.map_at_k}

    def retrieval_keys(self) -> list[str]:
        """Metric keys as the reference orders them: per score function, per metric, per cut-off."""
        cutoffs = self.cutoffs()
        return [f"{fn}_{metric.replace('@k', f'@{k}')}" for fn in self.score_functions
                for metric in RETRIEVAL_METRICS for k in cutoffs[metric]]

    def retrieval_primary_key(self) -> str:
        return f"{self.main_score_function or self.score_functions[0]}_ndcg@{max(self.ndcg_at_k)}"


def evaluate_retrieval(model: SentenceEmbedder, data: RetrievalData, options: RetrievalOptions, batch_size: int,
                       truncate_dim: int | None = None, query_prompt: str | None = None,
                       corpus_prompt: str | None = None, embed=embed_rows) -> dict[str, float]:
    """Metrics (keys of `options.retrieval_keys()`) of ranking `data.corpus` for each query with relevant documents.

    Queries are embedded with the model's `query` prompt and route, documents with its `document` ones, unless an
    explicit prompt is given; every distinct text is embedded once and reused by every score function. `embed`
    (embed_rows' signature) lets the sparse evaluators see the embeddings.
    """
    query_ids = [qid for qid in data.queries if data.relevant.get(qid)]
    corpus_ids = sorted(data.corpus)  # ascending ids: rank ties then break by corpus id, as the reference's
    queries = embed(model, [data.queries[qid] for qid in query_ids], batch_size, truncate_dim, "query",
                    query_prompt, task="query")
    corpus = embed(model, [data.corpus[cid] for cid in corpus_ids], options.corpus_batch_size or batch_size,
                   truncate_dim, "document", corpus_prompt, task="document")
    relevant = [data.relevant[qid] for qid in query_ids]
    num_relevant = np.array([len(ids) for ids in relevant])
    depth = max(max(ks) for ks in options.cutoffs().values())
    metrics = {}
    for fn in options.score_functions:
        _, rows = top_k_search(queries, corpus, MATRIX[fn], depth, options.corpus_chunk_size)
        hits = np.zeros((len(query_ids), depth), dtype=bool)
        for query, (ranked, wanted) in enumerate(zip(rows.tolist(), relevant)):
            hits[query, :len(ranked)] = [corpus_ids[row] in wanted for row in ranked]
        for metric, values in retrieval_metrics(hits, num_relevant, options.cutoffs()).items():
            metrics |= {f"{fn}_{metric.replace('@k', f'@{k}')}": value for k, value in values.items()}
    return {key: metrics[key] for key in options.retrieval_keys()}


class InformationRetrievalParams(EvaluatorParams, RetrievalOptions):
    type: Literal["ir"]
    split: str = Field("test", description="qrels/{split}.tsv of a BEIR folder, or the split of a hub dataset")
    query_prompt: str | None = Field(None, description="prefix for queries (default: the model's `query` prompt)")
    query_prompt_name: str | None = Field(None, description="a named prompt of the model for queries")
    corpus_prompt: str | None = Field(None, description="prefix for documents (default: the model's `document` prompt)")
    corpus_prompt_name: str | None = Field(None, description="a named prompt of the model for documents")

    @model_validator(mode="after")
    def _table_options_unused(self) -> "InformationRetrievalParams":
        for key in ("columns", "subset", "shuffle_seed", "max_samples", "where"):
            if getattr(self, key):
                raise ValueError(f"`{key}` does not apply to retrieval data (a BEIR folder or a hub dataset with "
                                 f"corpus, queries and qrels subsets); remove it")
        if self.ignore_columns:
            raise ValueError("`ignore_columns` does not apply to retrieval data; remove it")
        return self


@register_evaluator(InformationRetrievalParams)
class InformationRetrievalEvaluator(Evaluator):
    """Accuracy, precision, recall, nDCG, MRR and MAP at k of an exact search over the whole corpus."""

    def __init__(self, params: InformationRetrievalParams, data: RetrievalData) -> None:
        super().__init__(params, {})
        self.data = data

    @classmethod
    def from_params(cls, params: InformationRetrievalParams, where: str) -> "InformationRetrievalEvaluator":
        if is_local(params.source):
            path = Path(params.source).expanduser()
            if not path.is_dir():
                raise DataError(f"{where}.source: {str(path)!r} is not a folder; retrieval data is a BEIR folder "
                                f"(corpus.jsonl, queries.jsonl, qrels/{{split}}.tsv)")
            data = load_beir_folder(path, params.split, where)
        else:
            data = load_beir_hub(params.source, params.split, where)
        if not any(data.relevant.get(qid) for qid in data.queries):
            raise DataError(f"{where}: no query of {params.source!r} has a relevant document in the qrels of split "
                            f"{params.split!r}")
        return cls(params, data)

    @classmethod
    def metric_keys(cls, params: InformationRetrievalParams) -> list[str]:
        return params.retrieval_keys()

    @classmethod
    def primary_key(cls, params: InformationRetrievalParams) -> str:
        return params.retrieval_primary_key()

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        params = self.params
        query_prompt = model.resolve_prompt(params.query_prompt_name or "query", params.query_prompt)
        corpus_prompt = model.resolve_prompt(params.corpus_prompt_name or "document", params.corpus_prompt)
        return evaluate_retrieval(model, self.data, params, params.batch_size, params.truncate_dim,
                                  query_prompt, corpus_prompt, self.embed)
